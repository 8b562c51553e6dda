"""faultfs mounted per test: only where it can run (root, /dev/fuse), as on CI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.faultfs import FaultFs, mounted_faultfs, unavailable_reason


@pytest.fixture
def faultfs(tmp_path: Path) -> Iterator[FaultFs]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with mounted_faultfs(tmp_path / "volume") as fs:
        yield fs
