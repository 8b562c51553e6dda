"""The FUSE wire protocol (include/uapi/linux/fuse.h), spoken over /dev/fuse, for faultfs.

No binding and no libfuse: the kernel hands whole requests to read() and takes whole
replies from write(), so a loop with ``struct`` is enough for the operations a spool
performs. Anything else is answered ENOSYS, which the kernel either remembers (xattrs) or
passes on to the caller. One request at a time: the spool's workload is small, and a
single thread keeps the model consistent without locking every operation by hand.

The kernel is told to cache nothing (zero attribute and entry timeouts, direct I/O), so
after a power cut every stat, lookup and read sees what the model has, not what was.
flock and POSIX locks are left to the kernel (the flags that would route them here are
not set).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import struct
import threading
from collections.abc import Callable

from tests.support.faultfs.model import ROOT, Model, Node

IN_HEADER = struct.Struct("<IIQQIIII")
OUT_HEADER = struct.Struct("<IiQ")
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")
ENTRY_PREFIX = struct.Struct("<QQQQII")
ATTR_PREFIX = struct.Struct("<QII")
OPEN_OUT = struct.Struct("<QII")
INIT_IN = struct.Struct("<IIII")
INIT_OUT = struct.Struct("<IIIIHHIIHHI7I")
READ_IN = struct.Struct("<QQIIQII")
WRITE_IN = struct.Struct("<QQIIQII")
WRITE_OUT = struct.Struct("<II")
SETATTR_IN = struct.Struct("<IIQQQQQQIIIIIIII")
CREATE_IN = struct.Struct("<IIII")
MKNOD_IN = struct.Struct("<IIII")
MKDIR_IN = struct.Struct("<II")
RENAME_IN = struct.Struct("<Q")
RENAME2_IN = struct.Struct("<QII")
STATFS_OUT = struct.Struct("<QQQQQIIII6I")
DIRENT = struct.Struct("<QQII")
NOTIFY_INVAL_INODE = struct.Struct("<Qqq")

LOOKUP, FORGET, GETATTR, SETATTR = 1, 2, 3, 4
MKNOD, MKDIR, UNLINK, RMDIR, RENAME = 8, 9, 10, 11, 12
OPEN, READ, WRITE, STATFS, RELEASE, FSYNC, FLUSH, INIT = 14, 15, 16, 17, 18, 20, 25, 26
OPENDIR, READDIR, RELEASEDIR, FSYNCDIR, ACCESS, CREATE, INTERRUPT, DESTROY = (
    27,
    28,
    29,
    30,
    34,
    35,
    36,
    38,
)
BATCH_FORGET, RENAME2 = 42, 45
# Requests the kernel expects no answer to.
NO_REPLY = {FORGET, BATCH_FORGET, INTERRUPT}
# Requests answered even while frozen (a power cut in progress): they change nothing.
HOUSEKEEPING = {INIT, RELEASE, RELEASEDIR, FLUSH, DESTROY}

FATTR_SIZE = 1 << 3
FOPEN_DIRECT_IO = 1
FUSE_BIG_WRITES = 1 << 5
NOTIFY_INVAL_INODE_CODE = 2
MAX_WRITE = 128 * 1024
BLOCK = 4096


class Server:
    def __init__(self, fd: int, model: Model, lock: threading.Lock) -> None:
        self.fd = fd
        self.model = model
        self.lock = lock
        self.frozen = False
        # Freeze by itself right after this many more writes (None: not armed), so a cut
        # can land between a write and its fsync.
        self.freeze_after_writes: int | None = None
        handlers: dict[int, Callable[[int, bytes], bytes]] = {
            LOOKUP: self._lookup,
            GETATTR: self._getattr,
            SETATTR: self._setattr,
            MKNOD: self._mknod,
            MKDIR: self._mkdir,
            UNLINK: lambda ino, body: self._remove(ino, body, is_dir=False),
            RMDIR: lambda ino, body: self._remove(ino, body, is_dir=True),
            RENAME: self._rename,
            RENAME2: self._rename2,
            OPEN: self._open,
            OPENDIR: self._open,
            READ: self._read,
            WRITE: self._write,
            STATFS: self._statfs,
            RELEASE: _empty,
            RELEASEDIR: _empty,
            FLUSH: _empty,
            ACCESS: _empty,
            FSYNC: self._fsync,
            FSYNCDIR: self._fsync,
            READDIR: self._readdir,
            CREATE: self._create,
            INIT: self._init,
            DESTROY: _empty,
        }
        self._handlers = handlers

    def serve(self) -> None:
        """Answer requests until the filesystem is unmounted."""
        while True:
            try:
                request = os.read(self.fd, MAX_WRITE + 64 * 1024)
            except OSError as exc:
                if exc.errno in (errno.EINTR, errno.EAGAIN, errno.ENOENT):
                    continue  # ENOENT: a request interrupted before it was read
                if exc.errno == errno.ENODEV:
                    return  # unmounted
                raise
            _, opcode, unique, ino, *_ = IN_HEADER.unpack_from(request)
            if opcode in NO_REPLY:
                continue
            body = request[IN_HEADER.size :]
            handler = self._handlers.get(opcode)
            with self.lock:
                try:
                    if handler is None:
                        raise OSError(errno.ENOSYS, "not implemented")
                    if self.frozen and opcode not in HOUSEKEEPING:
                        raise OSError(errno.EIO, "the power is off")
                    reply = handler(ino, body)
                    error = 0
                    if opcode == WRITE and self.freeze_after_writes is not None:
                        self.freeze_after_writes -= 1
                        if self.freeze_after_writes <= 0:
                            self.frozen, self.freeze_after_writes = True, None
                except OSError as exc:
                    reply, error = b"", -(exc.errno or errno.EIO)
            self._send(unique, error, reply)
            if opcode == DESTROY:
                return

    def _send(self, unique: int, error: int, reply: bytes) -> None:
        try:
            os.write(self.fd, OUT_HEADER.pack(OUT_HEADER.size + len(reply), error, unique) + reply)
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # the caller was interrupted (killed) meanwhile
                raise

    def forget_caches(self) -> None:
        """Ask the kernel to drop what it knows of every file (after a power cut)."""
        for ino in list(self.model.nodes):
            notice = NOTIFY_INVAL_INODE.pack(ino, 0, 0)
            header = OUT_HEADER.pack(OUT_HEADER.size + len(notice), NOTIFY_INVAL_INODE_CODE, 0)
            with contextlib.suppress(OSError):  # an inode the kernel has never seen
                os.write(self.fd, header + notice)

    # -- replies

    def _attr(self, node: Node) -> bytes:
        seconds, nanos = divmod(node.mtime_ns, 1_000_000_000)
        size = node.size
        return ATTR.pack(
            node.ino,
            size,
            (size + 511) // 512,
            seconds,
            seconds,
            seconds,
            nanos,
            nanos,
            nanos,
            node.mode,
            2 if node.is_dir else 1,
            0,
            0,
            0,
            BLOCK,
            0,
        )

    def _entry(self, node: Node) -> bytes:
        return ENTRY_PREFIX.pack(node.ino, 0, 0, 0, 0, 0) + self._attr(node)

    def _init(self, ino: int, body: bytes) -> bytes:
        major, minor, readahead, _flags = INIT_IN.unpack_from(body)
        if major != 7:
            raise OSError(errno.EPROTO, "FUSE major version 7 expected")
        # minor 31: the layout below; the kernel speaks any older minor it is answered with.
        fields = [7, min(minor, 31), readahead, FUSE_BIG_WRITES, 16, 12, MAX_WRITE, 1, 32, 0, 0]
        return INIT_OUT.pack(*fields, *([0] * 7))

    def _lookup(self, ino: int, body: bytes) -> bytes:
        return self._entry(self.model.lookup(ino, _name(body)))

    def _getattr(self, ino: int, body: bytes) -> bytes:
        return ATTR_PREFIX.pack(0, 0, 0) + self._attr(self.model.node(ino))

    def _setattr(self, ino: int, body: bytes) -> bytes:
        valid, _, _, size, *_rest = SETATTR_IN.unpack_from(body)
        mode = _rest[7]
        node = self.model.node(ino)
        if valid & FATTR_SIZE:
            self.model.truncate(ino, size)
        if valid & 1:  # FATTR_MODE
            node.mode = stat.S_IFMT(node.mode) | (mode & 0o7777)
        return ATTR_PREFIX.pack(0, 0, 0) + self._attr(node)

    def _mknod(self, ino: int, body: bytes) -> bytes:
        mode, _rdev, umask, _ = MKNOD_IN.unpack_from(body)
        if not stat.S_ISREG(mode):
            raise OSError(errno.EPERM, "regular files only")
        name = _name(body[MKNOD_IN.size :])
        return self._entry(self.model.create(ino, name, mode & ~umask, is_dir=False))

    def _mkdir(self, ino: int, body: bytes) -> bytes:
        mode, umask = MKDIR_IN.unpack_from(body)
        name = _name(body[MKDIR_IN.size :])
        return self._entry(self.model.create(ino, name, mode & ~umask, is_dir=True))

    def _remove(self, ino: int, body: bytes, *, is_dir: bool) -> bytes:
        self.model.remove(ino, _name(body), is_dir=is_dir)
        return b""

    def _rename(self, ino: int, body: bytes) -> bytes:
        (new_parent,) = RENAME_IN.unpack_from(body)
        old, new = _names(body[RENAME_IN.size :])
        self.model.rename(ino, old, new_parent, new, 0)
        return b""

    def _rename2(self, ino: int, body: bytes) -> bytes:
        new_parent, flags, _ = RENAME2_IN.unpack_from(body)
        if flags & ~1:
            raise OSError(errno.EINVAL, "only RENAME_NOREPLACE")
        old, new = _names(body[RENAME2_IN.size :])
        self.model.rename(ino, old, new_parent, new, flags)
        return b""

    def _open(self, ino: int, body: bytes) -> bytes:
        self.model.node(ino)
        return OPEN_OUT.pack(0, FOPEN_DIRECT_IO, 0)

    def _create(self, ino: int, body: bytes) -> bytes:
        flags, mode, umask, _ = CREATE_IN.unpack_from(body)
        name = _name(body[CREATE_IN.size :])
        try:
            node = self.model.create(ino, name, mode & ~umask, is_dir=False)
        except FileExistsError:
            if flags & os.O_EXCL:
                raise
            node = self.model.lookup(ino, name)
            if flags & os.O_TRUNC:
                self.model.truncate(node.ino, 0)
        return self._entry(node) + OPEN_OUT.pack(0, FOPEN_DIRECT_IO, 0)

    def _read(self, ino: int, body: bytes) -> bytes:
        _fh, offset, size, *_ = READ_IN.unpack_from(body)
        return self.model.read(ino, offset, size)

    def _write(self, ino: int, body: bytes) -> bytes:
        _fh, offset, size, *_ = WRITE_IN.unpack_from(body)
        data = body[WRITE_IN.size : WRITE_IN.size + size]
        return WRITE_OUT.pack(self.model.write(ino, offset, data), 0)

    def _fsync(self, ino: int, body: bytes) -> bytes:
        self.model.fsync(ino)
        return b""

    def _statfs(self, ino: int, body: bytes) -> bytes:
        budget = self.model.budget if self.model.budget is not None else 1 << 32
        blocks = budget // BLOCK
        free = max(0, budget - self.model.used()) // BLOCK
        inodes = 1 << 20
        free_inodes = inodes - len(self.model.nodes)
        fields = [blocks, free, free, inodes, free_inodes, BLOCK, 255, BLOCK, 0]
        return STATFS_OUT.pack(*fields, *([0] * 6))

    def _readdir(self, ino: int, body: bytes) -> bytes:
        _fh, offset, size, *_ = READ_IN.unpack_from(body)
        directory = self.model.directory(ino)
        listing = [(".", directory), ("..", directory)]
        listing += [(name, self.model.nodes[i]) for name, i in sorted(directory.entries.items())]
        out = bytearray()
        for index in range(offset, len(listing)):
            name, node = listing[index]
            raw = name.encode()
            kind = stat.S_IFMT(node.mode) >> 12
            entry = DIRENT.pack(node.ino, index + 1, len(raw), kind) + raw
            entry += bytes(-len(entry) % 8)
            if len(out) + len(entry) > size:
                break
            out += entry
        return bytes(out)


def _empty(ino: int, body: bytes) -> bytes:
    return b""


def _name(body: bytes) -> str:
    return body.split(b"\0", 1)[0].decode()


def _names(body: bytes) -> tuple[str, str]:
    old, new, *_ = body.split(b"\0")
    return old.decode(), new.decode()


__all__ = ["ROOT", "Server"]
