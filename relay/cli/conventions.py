"""Conventions every ``relay`` command shares: exit codes, help layout, JSON output.

Exit codes (also in ``relay --help`` and docs/cli.md):

- 0: done; the check passed;
- 1: failed: invalid configuration, Kafka or UltraCart error, a check that did not pass;
- 2: usage error, from argparse; and ``webhooks plan --detailed-exitcode`` when apply
  would change something (terraform's convention).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
# argparse exits 2 on a usage error; nothing else does unless asked (--detailed-exitcode).
EXIT_USAGE = 2
EXIT_CHANGES = 2

EXIT_CODES_EPILOG = """\
exit codes:
  0  success (webhooks plan: also when UltraCart differs, unless --detailed-exitcode)
  1  failure: invalid configuration, Kafka or UltraCart error, a check that did not pass
  2  usage error (unknown option, missing argument); webhooks plan --detailed-exitcode:
     apply would change something
See docs/cli.md."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows "(default: X)" after each option's help, except where X says nothing.

    Raw descriptions and epilogs: the exit-code table keeps its lines.

    None and False defaults mean "not given" / "off", and a help text that already
    explains its default (``default: $RELAY_CONFIG``) keeps its own words.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if action.default is None or action.default is False or "default" in help_text:
            return help_text
        return super()._get_help_string(action)


def formatted(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` with relay's help layout (subparsers do not inherit the formatter)."""
    parser.formatter_class = HelpFormatter
    return parser


def print_json(document: Any) -> None:
    """One JSON document on stdout: the whole output of a command run with --json."""
    print(json.dumps(document, indent=2, default=str))


def say(text: str) -> None:
    """A one-line error or progress note, on stderr so stdout stays parseable."""
    print(text, file=sys.stderr, flush=True)
