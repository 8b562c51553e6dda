"""The few durable-file steps the spool and its quarantine share.

A file's data is durable after fsync of the file; its *name* (creation, rename, unlink) only
after fsync of the directory that holds it. A power cut drops everything else, so each
helper here does both halves (tests/support/faultfs checks it against a filesystem that
forgets what was not synced).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_directory(directory: Path) -> None:
    """Make the names in ``directory`` (created, renamed, removed) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_directory(directory: Path, mode: int = 0o700, *, durable: bool = True) -> None:
    """Create ``directory`` and any missing parents, each one's name made durable.

    ``Path.mkdir(parents=True)`` alone leaves a new directory's entry in its parent
    unsynced: after a power cut the directory, and every segment synced inside it, can be
    gone.
    """
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        # Created meanwhile by someone else: its parent is theirs to sync.
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=mode)
        if durable:
            fsync_directory(path.parent)
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a directory")


def replace_file(path: Path, data: bytes, *, temporary: Path, durable: bool = True) -> None:
    """Give ``path`` the content ``data`` atomically: a crash leaves the old file or the new.

    Written to ``temporary``, fsynced, renamed over ``path``, then the directory fsynced,
    so the new name survives a power cut as well.
    """
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        write_all(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    if durable:
        fsync_directory(path.parent)
