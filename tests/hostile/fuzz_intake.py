"""Coverage-guided fuzzing of the delivery parser and decoders with atheris (libFuzzer).

    python -m tests.hostile.fuzz_intake [libFuzzer options] [corpus dir]
    make fuzz            # a longer run: atheris for FUZZ_SECONDS, then the properties with
                         # HYPOTHESIS_PROFILE=fuzz

The targets are those of tests/hostile/targets.py, which the hypothesis properties also
run in CI. A crash is any exception other than relay's 4xx refusals; libFuzzer stops and
writes the input as crash-<hash> in the working directory.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

# atheris ships no type information: held as Any rather than exempted from mypy.
atheris: Any = importlib.import_module("atheris")

with atheris.instrument_imports(include=["relay", "tests.hostile"]):
    from tests.hostile.targets import dispatch


def main(argv: list[str]) -> None:
    atheris.Setup(argv, dispatch)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
