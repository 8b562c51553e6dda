"""The spool's on-disk log: append, replay, torn tails, lock, limits, segment reclaim."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.events.records import Record
from relay.spool.codec import decode_delivery, encode_delivery, peek
from relay.spool.errors import SpoolFull, SpoolLocked
from relay.spool.framing import HEADER_SIZE, ScanResult, encode_frame, scan
from relay.spool.log import SpoolLog


def record(n: int, size: int = 10) -> Record:
    return Record(
        topic="t.order_create",
        key=f"K-{n}".encode(),
        value=b"v" * size,
        headers=[("ce_id", f"id-{n}".encode()), ("empty", None)],
        label="order_create",
    )


def payload(n: int, size: int = 10) -> bytes:
    return encode_delivery([record(n, size)], appended_at=1000.0 + n)


def append(log: SpoolLog, n: int, size: int = 10) -> None:
    log.append(payload(n, size), records=1, appended_at=1000.0 + n)


def keys(log: SpoolLog) -> list[bytes | None]:
    return [r.key for _, raw in log.head(10_000, 1 << 30) for r in decode_delivery(raw).records]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def write_entries(directory: Path, count: int) -> None:
    """A closed log holding entries 0 .. count-1 (keys K-0 ...), as a stopped relay leaves it."""
    log = SpoolLog(directory, 1 << 20)
    log.open()
    for n in range(count):
        append(log, n)
    log.close()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def test_appended_entries_replay_after_reopen_until_committed(spool_dir: Path) -> None:
    log = SpoolLog(spool_dir, 1 << 20)
    log.open()
    for n in range(5):
        append(log, n)
    log.sync()
    assert (log.pending_entries, log.pending_records) == (5, 5)
    log.commit(2)
    log.close()

    again = SpoolLog(spool_dir, 1 << 20)
    recovery = again.open()
    assert (recovery.entries, recovery.records, recovery.truncated_bytes) == (3, 3, 0)
    assert keys(again) == [b"K-2", b"K-3", b"K-4"]
    again.close()


def test_a_torn_tail_is_truncated_and_appends_continue_after_it(spool_dir: Path) -> None:
    write_entries(spool_dir, 3)
    (segment,) = segments(spool_dir)
    # relay killed in the middle of writing a fourth frame
    with segment.open("ab") as handle:
        handle.write(encode_frame(payload(3))[:-7])

    log = SpoolLog(spool_dir, 1 << 20)
    recovery = log.open()
    assert recovery.entries == 3
    assert recovery.truncated_bytes == len(encode_frame(payload(3))) - 7
    append(log, 4)
    log.close()

    log = SpoolLog(spool_dir, 1 << 20)
    assert log.open().truncated_bytes == 0
    assert keys(log) == [b"K-0", b"K-1", b"K-2", b"K-4"]
    log.close()


def test_a_corrupt_frame_ends_the_valid_log(spool_dir: Path) -> None:
    write_entries(spool_dir, 3)
    (segment,) = segments(spool_dir)
    data = bytearray(segment.read_bytes())
    second = len(encode_frame(payload(0)))
    data[second + HEADER_SIZE + 3] ^= 0xFF  # one flipped bit in the second frame's payload
    segment.write_bytes(bytes(data))

    log = SpoolLog(spool_dir, 1 << 20)
    recovery = log.open()
    assert recovery.entries == 1
    assert keys(log) == [b"K-0"]
    log.close()


def test_one_process_per_directory(spool_dir: Path) -> None:
    first = SpoolLog(spool_dir, 1 << 20)
    first.open()
    with pytest.raises(SpoolLocked):
        SpoolLog(spool_dir, 1 << 20).open()
    first.close()
    second = SpoolLog(spool_dir, 1 << 20)
    second.open()
    second.close()


def test_full_spool_refuses_and_takes_again_once_drained(spool_dir: Path) -> None:
    log = SpoolLog(spool_dir, 4096, segment_bytes=1024)
    log.open()
    appended = 0
    with pytest.raises(SpoolFull):
        for n in range(100):
            append(log, n, size=200)
            appended += 1
    assert 0 < appended < 100
    assert log.disk_bytes <= 4096
    log.commit(log.pending_entries)
    append(log, 999, size=200)
    log.close()


def test_acknowledged_segments_are_deleted(spool_dir: Path) -> None:
    log = SpoolLog(spool_dir, 1 << 20, segment_bytes=1024)
    log.open()
    for n in range(20):
        append(log, n, size=200)
    assert len(segments(spool_dir)) > 3
    log.commit(10)
    remaining = segments(spool_dir)
    assert keys(log)[0] == b"K-10"
    log.commit(10)
    assert log.pending_entries == 0
    # Everything acknowledged: one fresh, empty segment is left.
    (left,) = segments(spool_dir)
    assert left.stat().st_size == 0
    assert left not in remaining
    assert log.disk_bytes == 0
    log.close()
    assert SpoolLog(spool_dir, 1 << 20).open().entries == 0


def test_a_damaged_checkpoint_replays_everything_rather_than_nothing(spool_dir: Path) -> None:
    log = SpoolLog(spool_dir, 1 << 20)
    log.open()
    for n in range(3):
        append(log, n)
    log.commit(1)
    log.close()
    (spool_dir / "checkpoint").write_bytes(b"garbage")
    log = SpoolLog(spool_dir, 1 << 20)
    assert log.open().entries == 3  # duplicates in Kafka, never a loss
    log.close()


def test_oldest_age_follows_the_head(spool_dir: Path) -> None:
    now = [2000.0]
    log = SpoolLog(spool_dir, 1 << 20, clock=lambda: now[0])
    log.open()
    assert log.oldest_age() == 0.0
    append(log, 0)  # appended at 1000.0
    append(log, 500)  # appended at 1500.0
    assert log.oldest_age() == 1000.0
    log.commit(1)
    assert log.oldest_age() == 500.0
    log.close()


def test_files_are_private(spool_dir: Path) -> None:
    log = SpoolLog(spool_dir, 1 << 20)
    log.open()
    append(log, 0)
    log.commit(0)
    log.close()
    for path in [spool_dir, *spool_dir.iterdir()]:
        assert os.stat(path).st_mode & 0o077 == 0, path


_bytes = st.binary(max_size=64)
_records = st.lists(
    st.builds(
        Record,
        topic=st.text(max_size=20),
        key=st.none() | _bytes,
        value=_bytes,
        headers=st.lists(st.tuples(st.text(max_size=10), st.none() | _bytes), max_size=4),
        label=st.text(max_size=10),
    ),
    max_size=5,
)


@given(_records, st.integers(min_value=0, max_value=2**40))
def test_codec_round_trips_any_records(records: list[Record], millis: int) -> None:
    raw = encode_delivery(records, millis / 1000)
    decoded = decode_delivery(raw)
    assert decoded.records == records
    assert peek(raw) == (millis / 1000, len(records))


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=8), st.data())
def test_any_cut_of_a_frame_stream_scans_to_a_prefix(
    payloads: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(p) for p in payloads)
    cut = data.draw(st.integers(min_value=0, max_value=len(stream)))
    result = ScanResult(end=0)
    found = [f.payload for f in scan(io.BytesIO(stream[:cut]), 0, result)]
    assert found == payloads[: len(found)]
    assert result.torn == (result.end != cut)
