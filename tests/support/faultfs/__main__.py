"""``python -m tests.support.faultfs MOUNTPOINT CONTROL_SOCKET``: mount and serve faultfs.

Runs as a process of its own (root: it calls mount(2)), so the filesystem keeps answering
while the test process is busy, and a test that fails cannot leave it half-served: closing
/dev/fuse, which the process's end does, aborts the mount. Unmounting ends it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import random
import signal
import socket
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tests.support.faultfs.fuse import Server
from tests.support.faultfs.model import Model
from tests.support.faultfs.mount import mount, unmount

PR_SET_PDEATHSIG = 1


def main() -> None:
    # Unmount (in finally) on SIGTERM, and get one when the test process dies, so a
    # crashed test leaves no mount behind.
    signal.signal(signal.SIGTERM, _exit)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    parser = argparse.ArgumentParser(prog="faultfs")
    parser.add_argument("mountpoint", type=Path)
    parser.add_argument("control", type=Path)
    args = parser.parse_args()
    fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    mount(fd, args.mountpoint)
    model = Model()
    server = Server(fd, model, threading.Lock())
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(args.control))
    listener.listen(4)
    threading.Thread(target=_control, args=(listener, server), daemon=True).start()
    try:
        server.serve()
    finally:
        listener.close()
        args.control.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            unmount(args.mountpoint)  # already unmounted, unless a signal ended serve()


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _control(listener: socket.socket, server: Server) -> None:
    while True:
        connection, _ = listener.accept()
        with connection, connection.makefile("rwb") as stream:
            for line in stream:
                try:
                    answer = {"ok": True, **_command(server, json.loads(line))}
                except Exception as exc:  # reported to the client, which raises it
                    answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                stream.write(json.dumps(answer).encode() + b"\n")
                stream.flush()


def _command(server: Server, command: dict[str, Any]) -> dict[str, Any]:
    model = server.model
    op = command["op"]
    with server.lock:
        if op == "freeze":
            server.frozen = True
        elif op == "cut":
            seed = command.get("seed")
            rng = random.Random(seed) if command.get("torn", True) else None
            report = model.cut(rng)
            server.frozen = False
            server.freeze_after_writes = None
            result = asdict(report)
        elif op == "freeze_after_writes":
            server.freeze_after_writes = command["writes"]
        elif op == "fail_next_fsync":
            model.fail_next_fsync = True
        elif op == "budget":
            model.budget = command["bytes"]
        elif op != "status":
            raise ValueError(f"unknown command {op!r}")
        status = {
            "used": model.used(),
            "budget": model.budget,
            "unsynced_bytes": model.unsynced_bytes(),
            "fsyncs": model.fsyncs,
            "failed_fsyncs": model.failed_fsyncs,
            "enospc": model.enospc,
            "cuts": model.cuts,
            "frozen": server.frozen,
        }
    if op == "cut":
        server.forget_caches()  # outside the lock: the kernel may call back meanwhile
        return {**status, "cut": result}
    return status


if __name__ == "__main__":
    main()
