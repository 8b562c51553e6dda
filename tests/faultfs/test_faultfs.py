"""faultfs itself: it really forgets what was not synced, and keeps what was.

Without these a power-cut scenario could pass because the filesystem did nothing.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tests.support.faultfs import FaultFs


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(path: Path, data: bytes, *, sync: bool, append: bool = False) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def power_cut(fs: FaultFs, seed: int | None = None, torn: bool = False) -> dict[str, int]:
    fs.freeze()
    return fs.cut(seed, torn=torn)


def test_writes_pass_through_and_are_read_back(faultfs: FaultFs) -> None:
    path = faultfs.path / "file"
    write(path, b"x" * 300_000, sync=False)  # larger than one FUSE write
    write(path, b"tail", sync=False, append=True)
    assert path.read_bytes() == b"x" * 300_000 + b"tail"
    assert os.stat(path).st_size == 300_004
    assert faultfs.status()["unsynced_bytes"] == 300_004


def test_a_cut_drops_unsynced_data_and_keeps_synced_data(faultfs: FaultFs) -> None:
    path = faultfs.path / "file"
    write(path, b"synced|", sync=True)
    fsync_dir(faultfs.path)
    write(path, b"unsynced", sync=False, append=True)
    assert path.read_bytes() == b"synced|unsynced"
    report = power_cut(faultfs)
    assert report["dropped_bytes"] == len(b"unsynced")
    assert path.read_bytes() == b"synced|"
    assert os.stat(path).st_size == len(b"synced|")


def test_a_new_name_survives_only_once_its_directory_is_synced(faultfs: FaultFs) -> None:
    directory = faultfs.path / "spool"
    directory.mkdir()
    write(directory / "lost", b"data synced, name not", sync=True)
    power_cut(faultfs)
    assert not directory.exists()  # the directory's own name was never synced either

    directory.mkdir()
    fsync_dir(faultfs.path)
    write(directory / "kept", b"both synced", sync=True)
    fsync_dir(directory)
    write(directory / "lost", b"data synced, name not", sync=True)
    report = power_cut(faultfs)
    assert report["dropped_names"] == 1
    assert os.listdir(directory) == ["kept"]
    assert (directory / "kept").read_bytes() == b"both synced"


def test_a_rename_and_an_unlink_are_undone_unless_the_directory_is_synced(
    faultfs: FaultFs,
) -> None:
    root = faultfs.path
    write(root / "old", b"old", sync=True)
    write(root / "gone", b"gone", sync=True)
    fsync_dir(root)
    write(root / "new.tmp", b"new", sync=True)
    os.replace(root / "new.tmp", root / "old")
    (root / "gone").unlink()
    assert sorted(os.listdir(root)) == ["old"] and (root / "old").read_bytes() == b"new"
    power_cut(faultfs)
    assert sorted(os.listdir(root)) == ["gone", "old"]
    assert (root / "old").read_bytes() == b"old"

    write(root / "new.tmp", b"new", sync=True)
    os.replace(root / "new.tmp", root / "old")
    fsync_dir(root)
    power_cut(faultfs)
    assert (root / "old").read_bytes() == b"new"


def test_a_failed_fsync_is_not_durable_even_if_retried(faultfs: FaultFs) -> None:
    path = faultfs.path / "file"
    write(path, b"synced|", sync=True)
    fsync_dir(faultfs.path)
    faultfs.fail_next_fsync()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"failed")
        with pytest.raises(OSError) as caught:
            os.fsync(fd)
        assert caught.value.errno == errno.EIO
        os.fsync(fd)  # the retry "succeeds", as on Linux, without writing anything
    finally:
        os.close(fd)
    assert path.read_bytes() == b"synced|failed"  # still in the page cache
    power_cut(faultfs)
    assert path.read_bytes() == b"synced|"
    assert faultfs.status()["failed_fsyncs"] == 1


def test_writes_past_the_budget_get_enospc_until_it_is_lifted(faultfs: FaultFs) -> None:
    path = faultfs.path / "file"
    write(path, b"a" * 4096, sync=False)
    faultfs.set_budget(10_000)
    stat = os.statvfs(faultfs.path)
    assert stat.f_bavail * stat.f_frsize <= 10_000 - 4096
    with pytest.raises(OSError) as caught:
        write(path, b"b" * 8000, sync=False, append=True)
    assert caught.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"a" * 4096  # nothing of the refused write
    faultfs.set_budget(None)
    write(path, b"b" * 8000, sync=False, append=True)
    assert os.stat(path).st_size == 12_096
    assert faultfs.status()["enospc"] == 1


def test_a_torn_cut_keeps_a_prefix_chosen_by_its_seed(faultfs: FaultFs) -> None:
    kept = []
    for _ in range(2):
        path = faultfs.path / "file"
        write(path, b"synced|", sync=True)
        fsync_dir(faultfs.path)
        write(path, bytes(range(256)) * 40, sync=False, append=True)
        report = power_cut(faultfs, seed=1234, torn=True)
        data = path.read_bytes()
        assert data.startswith(b"synced|")
        assert data[7:] == (bytes(range(256)) * 40)[: len(data) - 7]
        assert report["kept_unsynced_bytes"] == len(data) - 7
        kept.append(len(data))
        path.unlink()
        fsync_dir(faultfs.path)
    assert kept[0] == kept[1]  # the same seed, the same cut
    assert 7 < kept[0] < 7 + 256 * 40  # a torn tail, not all or nothing


def test_while_frozen_every_request_fails(faultfs: FaultFs) -> None:
    write(faultfs.path / "file", b"x", sync=True)
    faultfs.freeze()
    with pytest.raises(OSError) as caught:
        (faultfs.path / "file").read_bytes()
    assert caught.value.errno == errno.EIO
    faultfs.cut()
    assert faultfs.status()["frozen"] is False
