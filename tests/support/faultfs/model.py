"""The filesystem faultfs serves: every file twice, as the page cache sees it and as a disk
that only holds what was synced.

- A file's *data* reaches the durable copy on fsync of that file; the lowest offset changed
  since is all that needs remembering, since what lies before it is the same in both.
- A directory's *entries* (names created, renamed, removed) reach the durable copy on fsync
  of that directory.
- A power cut replaces what can be seen by what is durable: unsynced data and names are
  gone. With ``torn``, each file keeps a random prefix of its unsynced change, the way a
  kernel may have written some dirty pages back before the power went, so a frame can be
  cut anywhere.
- An armed fsync fails with EIO and, as Linux does ("fsyncgate"), marks the data clean
  without making it durable: a second fsync then succeeds, yet a cut still drops the data.
- With a byte budget, a write that would take the files' data beyond it fails with ENOSPC.

Plain logic without FUSE, so tests/unit can check it; faultfs.fuse serves it.
"""

from __future__ import annotations

import errno
import random
import stat
import time
from dataclasses import dataclass, field

ROOT = 1


def _error(code: int) -> OSError:
    return OSError(code, errno.errorcode.get(code, str(code)))


@dataclass
class Node:
    ino: int
    is_dir: bool
    mode: int
    mtime_ns: int = field(default_factory=time.time_ns)
    # Files: what reads see, what survives a cut, and where they may start to differ.
    data: bytearray = field(default_factory=bytearray)
    durable: bytearray = field(default_factory=bytearray)
    dirty_from: int | None = None
    # Directories: names -> inode numbers, as seen and as durable.
    entries: dict[str, int] = field(default_factory=dict)
    durable_entries: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.entries) if self.is_dir else len(self.data)

    def mark_dirty(self, offset: int) -> None:
        offset = min(offset, len(self.durable))
        self.dirty_from = offset if self.dirty_from is None else min(self.dirty_from, offset)


@dataclass
class CutReport:
    dropped_bytes: int = 0
    dropped_names: int = 0
    torn_files: int = 0
    kept_unsynced_bytes: int = 0


class Model:
    def __init__(self) -> None:
        self.nodes: dict[int, Node] = {ROOT: Node(ROOT, True, stat.S_IFDIR | 0o755)}
        self._next_ino = ROOT + 1
        self.budget: int | None = None
        self.fail_next_fsync = False
        self.fsyncs = 0
        self.failed_fsyncs = 0
        self.enospc = 0
        self.cuts = 0

    # -- names

    def node(self, ino: int) -> Node:
        node = self.nodes.get(ino)
        if node is None:
            raise _error(errno.ENOENT)
        return node

    def directory(self, ino: int) -> Node:
        node = self.node(ino)
        if not node.is_dir:
            raise _error(errno.ENOTDIR)
        return node

    def lookup(self, parent: int, name: str) -> Node:
        ino = self.directory(parent).entries.get(name)
        if ino is None:
            raise _error(errno.ENOENT)
        return self.node(ino)

    def create(self, parent: int, name: str, mode: int, *, is_dir: bool) -> Node:
        directory = self.directory(parent)
        if name in directory.entries:
            raise _error(errno.EEXIST)
        kind = stat.S_IFDIR if is_dir else stat.S_IFREG
        node = Node(self._next_ino, is_dir, kind | (mode & 0o7777))
        self._next_ino += 1
        self.nodes[node.ino] = node
        directory.entries[name] = node.ino
        directory.mtime_ns = time.time_ns()
        return node

    def remove(self, parent: int, name: str, *, is_dir: bool) -> None:
        directory = self.directory(parent)
        node = self.lookup(parent, name)
        if node.is_dir != is_dir:
            raise _error(errno.EISDIR if node.is_dir else errno.ENOTDIR)
        if node.is_dir and node.entries:
            raise _error(errno.ENOTEMPTY)
        del directory.entries[name]
        directory.mtime_ns = time.time_ns()

    def rename(self, parent: int, name: str, new_parent: int, new_name: str, flags: int) -> None:
        node = self.lookup(parent, name)
        target_dir = self.directory(new_parent)
        existing = target_dir.entries.get(new_name)
        if existing is not None and existing != node.ino:
            if flags & 1:  # RENAME_NOREPLACE
                raise _error(errno.EEXIST)
            replaced = self.node(existing)
            if replaced.is_dir != node.is_dir:
                raise _error(errno.EISDIR if replaced.is_dir else errno.ENOTDIR)
            if replaced.is_dir and replaced.entries:
                raise _error(errno.ENOTEMPTY)
        del self.directory(parent).entries[name]
        target_dir.entries[new_name] = node.ino

    # -- data

    def read(self, ino: int, offset: int, size: int) -> bytes:
        return bytes(self.node(ino).data[offset : offset + size])

    def write(self, ino: int, offset: int, data: bytes) -> int:
        node = self.node(ino)
        end = offset + len(data)
        self._check_room(node, end)
        if offset > len(node.data):
            node.mark_dirty(len(node.data))
            node.data.extend(bytes(offset - len(node.data)))
        node.data[offset:end] = data
        node.mark_dirty(offset)
        node.mtime_ns = time.time_ns()
        return len(data)

    def truncate(self, ino: int, size: int) -> None:
        node = self.node(ino)
        self._check_room(node, size)
        if size < len(node.data):
            del node.data[size:]
        else:
            node.data.extend(bytes(size - len(node.data)))
        node.mark_dirty(size)
        node.mtime_ns = time.time_ns()

    def _check_room(self, node: Node, new_size: int) -> None:
        growth = new_size - len(node.data)
        if self.budget is not None and growth > 0 and self.used() + growth > self.budget:
            self.enospc += 1
            raise _error(errno.ENOSPC)

    def used(self) -> int:
        """Bytes of file data reachable by name: what a full disk counts."""
        total = 0
        stack = [self.nodes[ROOT]]
        while stack:
            directory = stack.pop()
            for ino in directory.entries.values():
                child = self.nodes[ino]
                if child.is_dir:
                    stack.append(child)
                else:
                    total += len(child.data)
        return total

    # -- durability

    def fsync(self, ino: int) -> None:
        node = self.node(ino)
        self.fsyncs += 1
        if node.is_dir:
            node.durable_entries = dict(node.entries)
            return
        if self.fail_next_fsync:
            self.fail_next_fsync = False
            self.failed_fsyncs += 1
            node.dirty_from = None  # "clean", yet not durable: a retried fsync lies
            raise _error(errno.EIO)
        if node.dirty_from is not None:
            del node.durable[node.dirty_from :]
            node.durable.extend(node.data[node.dirty_from :])
            node.dirty_from = None

    def unsynced_bytes(self) -> int:
        return sum(
            len(n.data) - n.dirty_from
            for n in self.nodes.values()
            if not n.is_dir and n.dirty_from is not None
        )

    def cut(self, rng: random.Random | None = None) -> CutReport:
        """Power loss: what can be seen becomes what was durable (``rng``: torn writes)."""
        report = CutReport()
        self.cuts += 1
        for node in self.nodes.values():
            if node.is_dir:
                lost = set(node.entries.items()) ^ set(node.durable_entries.items())
                report.dropped_names += len(lost)
                node.entries = dict(node.durable_entries)
                continue
            survived = bytearray(node.durable)
            if node.dirty_from is not None:
                start = node.dirty_from
                unsynced = len(node.data) - start
                keep = rng.randint(0, unsynced) if rng is not None and unsynced > 0 else 0
                if 0 < keep < unsynced:
                    report.torn_files += 1
                survived[start : start + keep] = node.data[start : start + keep]
                report.kept_unsynced_bytes += keep
                report.dropped_bytes += unsynced - keep
            node.data = survived
            node.durable = bytearray(survived)
            node.dirty_from = None
        self.fail_next_fsync = False
        return report
