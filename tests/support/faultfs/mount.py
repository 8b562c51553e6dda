"""mount(2) and umount2(2) for a FUSE filesystem served on an open /dev/fuse descriptor."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

MS_NOSUID = 2
MS_NODEV = 4
MNT_DETACH = 2


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def mount(fd: int, mountpoint: Path) -> None:
    options = f"fd={fd},rootmode=40000,user_id={os.getuid()},group_id={os.getgid()}"
    target = os.fsencode(mountpoint)
    flags = MS_NOSUID | MS_NODEV
    done = _libc().mount(b"faultfs", target, b"fuse.faultfs", flags, options.encode())
    if done != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mount {mountpoint}: {os.strerror(code)}")


def unmount(mountpoint: Path) -> None:
    """Detach the mount; the server's read() then ends with ENODEV."""
    if _libc().umount2(os.fsencode(mountpoint), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"umount {mountpoint}: {os.strerror(code)}")
