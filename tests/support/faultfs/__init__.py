"""faultfs: a FUSE filesystem of the tests' own that forgets what was not fsynced.

In the spirit of LazyFS (which Jepsen runs under databases), but small and in pure Python,
speaking the FUSE protocol over /dev/fuse itself (fuse.py), so it needs neither libfuse
nor a binding from PyPI, only root and /dev/fuse. What it models is in model.py: data is
durable after fsync of its file, names after fsync of their directory; on command it cuts
the power (drops the rest, optionally keeping a torn prefix), fails the next fsync with
EIO, or answers ENOSPC past a byte budget.

    with mounted_faultfs(tmp_path / "volume") as fs:
        ... relay writes its spool under fs.path ...
        fs.freeze()             # the instant of the cut: every request now fails
        relay.stop(SIGKILL)
        fs.cut(seed=7)          # unsynced state dropped; the filesystem answers again
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.faultfs.mount import unmount

REPO_ROOT = Path(__file__).resolve().parents[3]


def unavailable_reason() -> str | None:
    """Why faultfs cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "faultfs mounts with mount(2), which needs root"
    if not os.path.exists("/dev/fuse"):
        return "faultfs needs /dev/fuse"
    return None


class FaultFs:
    def __init__(self, path: Path, process: subprocess.Popen[bytes], control: Path) -> None:
        self.path = path
        self._process = process
        self._control = control

    def command(self, op: str, **arguments: Any) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(30)
            connection.connect(str(self._control))
            connection.sendall(json.dumps({"op": op, **arguments}).encode() + b"\n")
            with connection.makefile("rb") as stream:
                answer: dict[str, Any] = json.loads(stream.readline())
        if not answer.pop("ok"):
            raise RuntimeError(f"faultfs {op}: {answer['error']}")
        return answer

    def status(self) -> dict[str, Any]:
        return self.command("status")

    def freeze(self) -> None:
        """The power goes: every request fails with EIO until ``cut``."""
        self.command("freeze")

    def freeze_after_writes(self, writes: int) -> None:
        """Freeze by itself right after the ``writes``-th next write, before any fsync of
        it can run: the cut then lands between an append and its sync."""
        self.command("freeze_after_writes", writes=writes)

    def cut(self, seed: int | None = None, *, torn: bool = True) -> dict[str, Any]:
        """Drop what was not synced (keeping a ``seed``-chosen torn prefix of each file's
        unsynced change when ``torn``) and answer again; returns what was dropped."""
        report: dict[str, Any] = self.command("cut", seed=seed, torn=torn)["cut"]
        return report

    def fail_next_fsync(self) -> None:
        self.command("fail_next_fsync")

    def set_budget(self, size: int | None) -> None:
        """Writes beyond ``size`` bytes of file data in all get ENOSPC (None: no limit)."""
        self.command("budget", bytes=size)

    def stop(self) -> None:
        try:
            unmount(self.path)
        finally:
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)


@contextmanager
def mounted_faultfs(path: Path, *, timeout: float = 15.0) -> Iterator[FaultFs]:
    """faultfs mounted on ``path`` (created) for the block's length."""
    path.mkdir(parents=True, exist_ok=True)
    # A short directory of its own: a Unix socket's path is limited to 107 bytes.
    control_dir = Path(tempfile.mkdtemp(prefix="faultfs-"))
    control = control_dir / "control"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.faultfs", str(path), str(control)],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
    )
    fs = FaultFs(path, process, control)
    try:
        deadline = time.monotonic() + timeout
        while not control.exists():
            if process.poll() is not None:
                raise RuntimeError(f"faultfs exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("faultfs did not start")
            time.sleep(0.02)
        if not os.path.ismount(path):
            raise RuntimeError(f"faultfs is not mounted on {path}")
        yield fs
    finally:
        if process.poll() is None:
            fs.stop()
        elif os.path.ismount(path):
            unmount(path)
        control.unlink(missing_ok=True)
        control_dir.rmdir()
