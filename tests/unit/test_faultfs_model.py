"""faultfs's model without FUSE (tests/faultfs mounts it): what a power cut keeps."""

from __future__ import annotations

import errno
import random

import pytest

from tests.support.faultfs.model import ROOT, Model


def test_only_synced_data_under_synced_names_survives_a_cut() -> None:
    model = Model()
    kept = model.create(ROOT, "kept", 0o600, is_dir=False)
    lost = model.create(ROOT, "lost", 0o600, is_dir=False)
    model.write(kept.ino, 0, b"synced")
    model.fsync(kept.ino)
    model.fsync(ROOT)  # both names durable from here
    model.write(kept.ino, 6, b"+unsynced")
    model.write(lost.ino, 0, b"never synced")
    late = model.create(ROOT, "late", 0o600, is_dir=False)
    model.write(late.ino, 0, b"synced, name not")
    model.fsync(late.ino)
    report = model.cut()
    assert sorted(model.nodes[ROOT].entries) == ["kept", "lost"]
    assert model.read(kept.ino, 0, 100) == b"synced"
    assert model.read(lost.ino, 0, 100) == b""
    assert report.dropped_names == 1
    assert report.dropped_bytes == len(b"+unsynced") + len(b"never synced")


def test_an_overwrite_and_a_truncate_are_undone_by_a_cut() -> None:
    model = Model()
    node = model.create(ROOT, "f", 0o600, is_dir=False)
    model.write(node.ino, 0, b"0123456789")
    model.fsync(node.ino)
    model.write(node.ino, 2, b"ab")
    model.truncate(node.ino, 5)
    assert model.read(node.ino, 0, 100) == b"01ab4"
    model.cut()
    assert model.read(node.ino, 0, 100) == b"0123456789"


def test_a_failed_fsync_leaves_the_data_readable_but_not_durable() -> None:
    model = Model()
    node = model.create(ROOT, "f", 0o600, is_dir=False)
    model.write(node.ino, 0, b"data")
    model.fail_next_fsync = True
    with pytest.raises(OSError) as caught:
        model.fsync(node.ino)
    assert caught.value.errno == errno.EIO
    model.fsync(node.ino)  # "succeeds": the pages were marked clean
    assert model.read(node.ino, 0, 100) == b"data"
    model.cut()
    assert model.read(node.ino, 0, 100) == b""


def test_the_budget_counts_data_reachable_by_name() -> None:
    model = Model()
    node = model.create(ROOT, "f", 0o600, is_dir=False)
    model.write(node.ino, 0, b"x" * 100)
    model.budget = 150
    with pytest.raises(OSError) as caught:
        model.write(node.ino, 100, b"y" * 51)
    assert caught.value.errno == errno.ENOSPC
    model.write(node.ino, 100, b"y" * 50)
    model.remove(ROOT, "f", is_dir=False)
    assert model.used() == 0


def test_a_torn_cut_keeps_a_seeded_prefix_of_the_unsynced_bytes() -> None:
    kept = []
    for _ in range(2):
        model = Model()
        node = model.create(ROOT, "f", 0o600, is_dir=False)
        model.fsync(ROOT)
        model.write(node.ino, 0, b"synced")
        model.fsync(node.ino)
        model.write(node.ino, 6, bytes(range(200)))
        model.cut(random.Random(99))
        kept.append(model.read(node.ino, 0, 1000))
    assert kept[0] == kept[1]
    assert kept[0] == b"synced" + bytes(range(200))[: len(kept[0]) - 6]
