"""relay's spool log on faultfs: what it acknowledged survives a power cut, the rest may go,
a torn tail is truncated, ENOSPC and a failed fsync are told apart."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from relay.events.records import Record
from relay.serving.preflight import preflight
from relay.settings import Settings
from relay.spool.codec import decode_delivery, encode_delivery
from relay.spool.errors import SpoolDiskFull, SpoolFailed
from relay.spool.log import SpoolLog
from tests.support.faultfs import FaultFs


def payload(n: int, size: int = 100) -> bytes:
    record = Record("t", f"K-{n}".encode(), b"v" * size, [("ce_id", f"{n}".encode())], "x")
    return encode_delivery([record], appended_at=1000.0 + n)


def keys(log: SpoolLog) -> list[bytes | None]:
    return [r.key for _, raw in log.head(10_000, 1 << 30) for r in decode_delivery(raw).records]


def power_cut(fs: FaultFs, log: SpoolLog, seed: int | None = None) -> dict[str, int]:
    """The power goes, then the dead process's descriptors close (its fsync at close then
    finds nothing left to write)."""
    fs.freeze()
    report = fs.cut(seed, torn=seed is not None)
    log.close()
    return report


def test_synced_appends_survive_a_cut_in_a_new_nested_directory(faultfs: FaultFs) -> None:
    # The directory and its parent are new: their names must be synced too, or the synced
    # segments vanish with them.
    log = SpoolLog(faultfs.path / "volume" / "spool", 1 << 20)
    log.open()
    for n in range(3):
        log.append(payload(n), 1, 1000.0 + n)
    log.sync()
    log.append(payload(3), 1, 1003.0)  # never synced: never acknowledged
    report = power_cut(faultfs, log)
    assert report["dropped_bytes"] > 0
    again = SpoolLog(faultfs.path / "volume" / "spool", 1 << 20)
    recovery = again.open()
    assert keys(again) == [b"K-0", b"K-1", b"K-2"]
    assert recovery.truncated_bytes == 0
    again.close()


def test_a_torn_tail_left_by_a_cut_is_truncated_and_appends_go_on(faultfs: FaultFs) -> None:
    directory = faultfs.path / "spool"
    torn_seen = 0
    for seed in range(20):
        log = SpoolLog(directory, 1 << 22)
        log.open()
        before = keys(log)
        log.append(payload(1000 + seed, 5000), 1, 1.0)
        log.sync()
        log.append(payload(2000 + seed, 5000), 1, 2.0)  # unsynced: kept in part, or not
        power_cut(faultfs, log, seed)
        log = SpoolLog(directory, 1 << 22)
        recovery = log.open()
        torn_seen += recovery.truncated_bytes > 0
        assert keys(log)[: len(before) + 1] == [*before, f"K-{1000 + seed}".encode()]
        log.append(payload(3000 + seed), 1, 3.0)
        log.sync()
        log.close()
    assert torn_seen > 0, "no cut tore a frame: the scenario did not test torn tails"


def test_enospc_keeps_nothing_of_the_append_and_passes_once_space_returns(
    faultfs: FaultFs,
) -> None:
    log = SpoolLog(faultfs.path / "spool", 1 << 22)
    log.open()
    log.append(payload(0), 1, 1.0)
    log.sync()
    faultfs.set_budget(faultfs.status()["used"] + 500)
    with pytest.raises(SpoolDiskFull):
        log.append(payload(1, 5000), 1, 2.0)
    assert not log.failed
    faultfs.set_budget(None)
    log.append(payload(2), 1, 3.0)
    log.sync()
    assert keys(log) == [b"K-0", b"K-2"]
    log.close()


def test_a_full_disk_is_freed_by_draining_without_room_for_a_checkpoint(
    faultfs: FaultFs,
) -> None:
    log = SpoolLog(faultfs.path / "spool", 1 << 22)
    log.open()
    for n in range(10):
        log.append(payload(n, 1000), 1, 1.0)
    log.sync()
    faultfs.set_budget(faultfs.status()["used"])  # not one byte more
    log.commit(10)  # everything acknowledged: the segment goes, then the checkpoint
    assert faultfs.status()["used"] < 1000
    log.append(payload(10), 1, 2.0)
    log.sync()
    assert keys(log) == [b"K-10"]
    log.close()


def test_a_failed_fsync_stops_the_log_and_is_never_retried(faultfs: FaultFs) -> None:
    log = SpoolLog(faultfs.path / "spool", 1 << 22)
    log.open()
    log.append(payload(0), 1, 1.0)
    log.sync()
    log.append(payload(1), 1, 2.0)
    faultfs.fail_next_fsync()
    with pytest.raises(OSError):
        log.sync()
    assert log.failed
    fsyncs = faultfs.status()["fsyncs"]
    with pytest.raises(SpoolFailed):
        log.append(payload(2), 1, 3.0)
    with pytest.raises(SpoolFailed):
        log.sync()
    assert faultfs.status()["fsyncs"] == fsyncs  # no second fsync that would "succeed"
    power_cut(faultfs, log)
    again = SpoolLog(faultfs.path / "spool", 1 << 22)
    again.open()
    assert keys(again) == [b"K-0"]  # what is durable: the failed one is gone
    again.close()


def spool_settings(directory: Path) -> Settings:
    return Settings.from_mapping(
        {
            "auth": {"basic_credentials": ["ultracart:a-test-secret"]},
            "spool": {"enabled": True, "directory": str(directory)},
        }
    )


def test_preflight_tries_the_volume_and_starts_on_a_full_one(faultfs: FaultFs) -> None:
    settings = spool_settings(faultfs.path / "spool")
    fsyncs = faultfs.status()["fsyncs"]
    assert preflight(settings, env={}) == []
    assert faultfs.status()["fsyncs"] > fsyncs  # the probe and the directories were synced
    faultfs.freeze()
    faultfs.cut()
    assert (faultfs.path / "spool").is_dir()  # its name was made durable
    faultfs.set_budget(faultfs.status()["used"])
    assert preflight(settings, env={}) == []  # full, not broken
    faultfs.set_budget(None)
    faultfs.fail_next_fsync()
    [problem] = preflight(settings, env={})
    assert problem.setting == "spool.directory"
    assert problem.message == (
        f"spool.directory: cannot fsync a file in {faultfs.path / 'spool'}: Input/output error"
    )


@pytest.mark.parametrize("seed", range(12))
def test_a_cut_anywhere_in_appends_syncs_and_commits_keeps_every_acknowledged_entry(
    faultfs: FaultFs, seed: int
) -> None:
    """Random appends, syncs and commits over small segments (rolls, deletions, checkpoint
    renames), the power cut after a random write. After each cut every entry that was
    synced and not committed is replayed, in order, and nothing never appended."""
    rng = random.Random(seed)
    directory = faultfs.path / "spool"
    next_key = 0
    for round_ in range(3):
        log = SpoolLog(directory, 1 << 22, segment_bytes=2048)
        log.open()
        # What the log holds, in order, and whether a sync has covered it since.
        held = [(key, True) for key in keys(log)]
        faultfs.freeze_after_writes(rng.randint(1, 60))
        try:
            for _ in range(200):
                if rng.random() < 0.6 or not held:
                    key = f"K-{next_key}".encode()
                    next_key += 1
                    log.append(payload(next_key - 1, rng.randint(10, 600)), 1, 1.0)
                    held.append((key, False))
                    if rng.random() < 0.7:
                        log.sync()
                        held = [(k, True) for k, _ in held]
                else:
                    count = rng.randint(1, len(held))
                    # Taken as committed before the call: if the power goes inside it,
                    # Kafka had them, and a replay of them is allowed, not required.
                    held = held[count:]
                    log.commit(count)
        except (OSError, SpoolFailed):
            pass  # the power went under this step
        faultfs.freeze()
        faultfs.cut(seed * 10 + round_)
        log.close()
        again = SpoolLog(directory, 1 << 22, segment_bytes=2048)
        again.open()
        replayed = keys(again)
        again.close()
        missing = [k for k, synced in held if synced and k not in replayed]
        assert not missing, f"seed {seed}, round {round_}: synced, not replayed: {missing}"
        numbers = [int(k[2:]) for k in replayed if k is not None]
        assert numbers == sorted(numbers) and all(n < next_key for n in numbers)
