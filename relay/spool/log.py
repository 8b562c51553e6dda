"""The spool on disk: numbered segment files of frames, a checkpoint, and a lock.

    <directory>/lock                      flock'd by the one process that owns the directory
    <directory>/checkpoint                (segment, offset) of the first unacknowledged frame
    <directory>/00000000000000000007.seg  frames, appended in order

An entry (one delivery) is appended to the active segment and acknowledged to the caller
once written (and fsynced, by the caller, per policy). The drainer reads entries from the
head, and ``commit`` moves the checkpoint past them only after Kafka acknowledged them;
segments wholly before the checkpoint are deleted. On ``open`` everything after the
checkpoint is scanned back into the index and a torn tail is truncated, so a crash at any
point loses nothing that was acknowledged, and at worst re-sends what Kafka already has.

All methods block (file I/O): the asyncio side calls them through ``asyncio.to_thread``.
A lock makes them safe to call from several threads at once.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from relay.spool.checkpoint import read_checkpoint, write_checkpoint
from relay.spool.codec import PREFIX_SIZE, peek
from relay.spool.errors import NO_SPACE, SpoolDiskFull, SpoolFailed, SpoolFull, SpoolLocked
from relay.spool.files import fsync_directory, make_directory, write_all
from relay.spool.framing import ScanResult, decode_frame, encode_frame, scan

logger = logging.getLogger(__name__)

_SUFFIX = ".seg"


@dataclass(frozen=True, slots=True)
class Entry:
    segment: int
    offset: int
    size: int
    records: int
    appended_at: float


@dataclass(frozen=True, slots=True)
class Recovery:
    entries: int
    records: int
    truncated_bytes: int


def segment_size_for(max_bytes: int) -> int:
    # Small enough that acknowledged segments are freed well before the spool is full,
    # large enough that a busy spool does not churn through files.
    return max(1024 * 1024, min(64 * 1024 * 1024, max_bytes // 16))


class SpoolLog:
    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        *,
        fsync: bool = True,
        segment_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dir = directory
        self._max_bytes = max_bytes
        self._fsync = fsync
        self._segment_bytes = segment_bytes or segment_size_for(max_bytes)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: deque[Entry] = deque()
        self._sizes: dict[int, int] = {}
        self._disk_bytes = 0
        self._pending_records = 0
        self._active = 0
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._failed = False
        self._checkpoint_failing = False

    # -- state, read without the lock: single reads of ints and deque ends are atomic

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def failed(self) -> bool:
        return self._failed

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    @property
    def pending_entries(self) -> int:
        return len(self._entries)

    @property
    def pending_records(self) -> int:
        return self._pending_records

    @property
    def disk_bytes(self) -> int:
        return self._disk_bytes

    def oldest_age(self) -> float:
        try:
            oldest = self._entries[0]
        except IndexError:
            return 0.0
        return max(0.0, self._clock() - oldest.appended_at)

    # -- lifecycle

    def open(self) -> Recovery:
        with self._lock:
            make_directory(self._dir, durable=self._fsync)
            self._take_directory_lock()
            try:
                return self._recover()
            except BaseException:
                self._release_directory_lock()
                raise

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                if self._fsync and not self._failed:
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
            self._release_directory_lock()

    def _take_directory_lock(self) -> None:
        fd = os.open(self._dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise SpoolLocked(
                    f"spool directory {self._dir} is in use by another relay process"
                ) from None
            raise
        self._lock_fd = fd

    def _release_directory_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def _recover(self) -> Recovery:
        checkpoint = read_checkpoint(self._dir)
        segments = sorted(self._segments())
        truncated = 0
        for segment in segments:
            path = self._path(segment)
            if checkpoint is not None and segment < checkpoint[0]:
                path.unlink()  # wholly acknowledged; a crash came before its deletion
                continue
            start = checkpoint[1] if checkpoint is not None and segment == checkpoint[0] else 0
            truncated += self._load_segment(segment, start)
        last = max([*self._sizes, checkpoint[0] if checkpoint is not None else 0])
        if last in self._sizes and self._sizes[last] < self._segment_bytes:
            self._active = last
            self._fd = os.open(self._path(last), os.O_WRONLY | os.O_APPEND)
        else:
            self._start_segment(last + 1)
        return Recovery(len(self._entries), self._pending_records, truncated)

    def _load_segment(self, segment: int, start: int) -> int:
        path = self._path(segment)
        size = path.stat().st_size
        start = min(start, size)
        result = ScanResult(end=start)
        with path.open("rb") as handle:
            for frame in scan(handle, start, result):
                if len(frame.payload) < PREFIX_SIZE:
                    result.torn = True
                    break
                appended_at, records = peek(frame.payload)
                self._entries.append(Entry(segment, frame.offset, frame.size, records, appended_at))
                self._pending_records += records
        self._sizes[segment] = result.end
        self._disk_bytes += result.end
        if result.end == size:
            return 0
        # A frame cut short by a crash mid-write (or damaged on disk): nothing after it can
        # be trusted, and the next append must not land behind it.
        logger.warning(
            "spool segment has a torn or corrupt tail; truncating it",
            extra={
                "segment": segment,
                "valid_bytes": result.end,
                "dropped_bytes": size - result.end,
            },
        )
        with path.open("r+b") as handle:
            handle.truncate(result.end)
            if self._fsync:
                os.fsync(handle.fileno())
        return size - result.end

    # -- writing

    def append(self, payload: bytes, records: int, appended_at: float) -> Entry:
        frame = encode_frame(payload)
        with self._lock:
            fd = self._writable()
            if self.disk_bytes + len(frame) > self._max_bytes:
                raise SpoolFull(f"the spool would exceed {self._max_bytes} bytes")
            if self._sizes[self._active] and (
                self._sizes[self._active] + len(frame) > self._segment_bytes
            ):
                self._roll()
                fd = self._writable()
            before = self._sizes[self._active]
            try:
                write_all(fd, frame)
            except OSError as exc:
                self._undo_partial_write(fd, before)
                if exc.errno in NO_SPACE and not self._failed:
                    raise SpoolDiskFull(f"no space left for the spool: {exc.strerror}") from None
                raise
            entry = Entry(self._active, before, len(frame), records, appended_at)
            self._entries.append(entry)
            self._sizes[self._active] = before + len(frame)
            self._disk_bytes += len(frame)
            self._pending_records += records
            return entry

    def sync(self) -> None:
        """Make every append so far durable (a no-op under ``fsync = "never"``)."""
        with self._lock:
            fd = self._writable()
            if not self._fsync:
                return
            try:
                os.fsync(fd)
            except OSError:
                # After a failed fsync the kernel may have dropped the dirty pages and marked
                # them clean, so a second fsync would "succeed" without writing them
                # ("fsyncgate"): never retry, stop taking deliveries instead.
                self._failed = True
                raise

    def _writable(self) -> int:
        if self._failed:
            raise SpoolFailed("an earlier spool write failed; restart relay to recover")
        if self._fd is None:
            raise SpoolFailed("the spool is not open")
        return self._fd

    def _undo_partial_write(self, fd: int, size: int) -> None:
        try:
            os.ftruncate(fd, size)
        except OSError:
            self._failed = True

    def _roll(self) -> None:
        if self._fd is not None and self._fsync:
            try:
                os.fsync(self._fd)
            except OSError:
                self._failed = True  # as in sync(): what reached the disk is unknown
                raise
        # The new segment first: if the volume has no room for it, the old one stays active.
        self._start_segment(self._active + 1)

    def _start_segment(self, segment: int) -> None:
        try:
            fd = os.open(
                self._path(segment), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600
            )
        except OSError as exc:
            if exc.errno in NO_SPACE:
                raise SpoolDiskFull(f"no space left for a spool segment: {exc.strerror}") from None
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._active = segment
        self._sizes[segment] = 0
        try:
            self._sync_directory()  # the new name, or its synced frames vanish with it
        except OSError:
            self._failed = True
            raise

    # -- draining

    def head(self, max_records: int, max_bytes: int) -> list[tuple[Entry, bytes]]:
        """The oldest unacknowledged entries (at least one if any), with their payloads."""
        with self._lock:
            chosen: list[Entry] = []
            records = size = 0
            for entry in self._entries:
                full = records + entry.records > max_records or size + entry.size > max_bytes
                if chosen and full:
                    break
                chosen.append(entry)
                records += entry.records
                size += entry.size
        # Read outside the lock: only commit() (the caller's next step) deletes segments.
        out = []
        handles: dict[int, int] = {}
        try:
            for entry in chosen:
                fd = handles.get(entry.segment)
                if fd is None:
                    fd = handles[entry.segment] = os.open(self._path(entry.segment), os.O_RDONLY)
                frame = os.pread(fd, entry.size, entry.offset)
                out.append((entry, decode_frame(frame)))
        finally:
            for fd in handles.values():
                os.close(fd)
        return out

    def commit(self, count: int) -> None:
        """Kafka acknowledged the ``count`` oldest entries: let them go.

        Segments wholly acknowledged are deleted *before* the checkpoint is written, so a
        full disk is freed without needing room for the checkpoint; a crash in between
        leaves an older checkpoint, whose replay only re-sends what Kafka has (the same
        ce_ids). The checkpoint only bounds that replay: failing to write it loses nothing,
        so it is logged and tried again at the next commit.
        """
        with self._lock:
            for _ in range(count):
                self._pending_records -= self._entries.popleft().records
            if self._entries:
                first = self._entries[0]
                position = (first.segment, first.offset)
            else:
                position = (self._active, self._sizes.get(self._active, 0))
                # Empty: start a fresh segment so every older one can be deleted now.
                if position[1] and not self._failed:
                    try:
                        self._roll()
                        position = (self._active, 0)
                    except SpoolDiskFull:
                        pass  # no room for a new segment: keep the old one, checkpoint its end
            for segment in [s for s in self._sizes if s < position[0]]:
                self._path(segment).unlink(missing_ok=True)
                self._disk_bytes -= self._sizes.pop(segment)
            try:
                write_checkpoint(self._dir, *position, durable=self._fsync)
            except OSError as exc:
                if not self._checkpoint_failing:
                    logger.warning(
                        "spool checkpoint could not be written; a restart will re-send more "
                        "deliveries Kafka already has",
                        extra={"error": f"{type(exc).__name__}: {exc}"},
                    )
                self._checkpoint_failing = True
                if exc.errno not in NO_SPACE:
                    self._failed = True  # an I/O error: the volume is not to be trusted
            else:
                self._checkpoint_failing = False

    # -- files

    def _path(self, segment: int) -> Path:
        return self._dir / f"{segment:020d}{_SUFFIX}"

    def _segments(self) -> list[int]:
        found = []
        for path in self._dir.glob("*" + _SUFFIX):
            if path.stem.isdigit():
                found.append(int(path.stem))
        return found

    def _sync_directory(self) -> None:
        if self._fsync:
            fsync_directory(self._dir)
