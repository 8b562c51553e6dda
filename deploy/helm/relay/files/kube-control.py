"""Run a ``relay webhooks`` command in a Kubernetes Job, keeping its files in a Secret.

``relay webhooks rotate-credentials`` writes files: the pairs relay accepts, the pair
UltraCart sends, and (``apply`` too) which webhook relay created. relay's pods read the
first from a Secret volume, so in the Job those files live in a private emptyDir and each
change is copied into that Secret at once; kubelet then updates the Secret volume in every
relay pod and relay re-reads the file. That is why the chart's [control]
reload_wait_seconds is longer than kubelet's propagation delay.

1. read the Secret through the API and write each named key to its file (mode 0600);
2. run the command;
3. while it runs (every second) and once after it ends, PATCH the Secret with each file
   that changed, conditioned on the resourceVersion last seen, so a concurrent writer makes
   the Job fail instead of one of them silently losing a pair. If a PATCH fails the command
   is stopped at once: rotation must never switch UltraCart to a pair relay was not given.

Standard library only: it runs on relay's image with a service account that may get and
patch that one Secret and nothing else.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class SyncError(Exception):
    """The Secret could not be read or written; the message names no secret value."""


class SecretStore:
    def __init__(self, api: str, namespace: str, name: str, sa_dir: Path) -> None:
        self.url = f"{api.rstrip('/')}/api/v1/namespaces/{namespace}/secrets/{name}"
        self.name = name
        self.token = (sa_dir / "token").read_text(encoding="utf-8").strip()
        ca = sa_dir / "ca.crt"
        self.context = ssl.create_default_context(cafile=str(ca)) if ca.is_file() else None
        self.resource_version = ""

    def _call(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/merge-patch+json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as response:
                answer: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as error:
            hint = {
                403: "the Job's ServiceAccount may not do this (see the chart's Role)",
                404: "no such Secret",
                409: "someone else changed it meanwhile (another rotation, a helm upgrade?)",
            }.get(error.code, error.reason)
            raise SyncError(f"{method} Secret {self.name}: HTTP {error.code}: {hint}") from None
        except (urllib.error.URLError, OSError) as error:
            raise SyncError(f"{method} Secret {self.name}: {error}") from None
        self.resource_version = str(answer.get("metadata", {}).get("resourceVersion", ""))
        return answer

    def read(self) -> dict[str, bytes]:
        data = self._call("GET").get("data") or {}
        return {key: base64.b64decode(value) for key, value in data.items()}

    def write(self, changes: dict[str, bytes]) -> None:
        self._call(
            "PATCH",
            {
                "metadata": {"resourceVersion": self.resource_version},
                "data": {k: base64.b64encode(v).decode() for k, v in changes.items()},
            },
        )


def pairs(text: bytes) -> list[bytes]:
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith(b"#")]


def write_private(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


def read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def seed(store: SecretStore, files: dict[str, Path], derive: dict[str, str]) -> dict[str, bytes]:
    """Write the Secret's keys to their files; return what the Secret holds now."""
    current = store.read()
    for key, path in files.items():
        if key in current:
            write_private(path, current[key])
    for key, source in derive.items():
        # A Secret made by hand may hold only the accepted pairs; with exactly one, that is
        # the pair UltraCart sends. With several, guessing could switch UltraCart to the
        # wrong one, so the Job stops and says what to add.
        if key in current:
            continue
        found = pairs(current.get(source, b""))
        if len(found) != 1:
            raise SyncError(
                f"Secret {store.name} has no key {key!r} (the pair UltraCart sends) and "
                f"{len(found)} pairs under {source!r}: add {key!r} with one user:password line"
            )
        write_private(files[key], found[0] + b"\n")
    return current


def sync(store: SecretStore, files: dict[str, Path], synced: dict[str, bytes]) -> None:
    changes = {}
    for key, path in files.items():
        content = read_file(path)
        if content is not None and content != synced.get(key):
            changes[key] = content
    if changes:
        store.write(changes)
        synced.update(changes)
        print(
            f"kube-control: Secret {store.name} updated ({', '.join(sorted(changes))})", flush=True
        )


def stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def parse_mapping(items: list[str], what: str) -> dict[str, str]:
    mapping = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise SystemExit(f"kube-control: {what} must be KEY=VALUE, not {item!r}")
        mapping[key] = value
    return mapping


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", required=True, help="the Secret relay's pods mount")
    parser.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="KEY=PATH",
        help="a Secret key kept in sync with a file",
    )
    parser.add_argument(
        "--derive",
        action="append",
        default=[],
        metavar="KEY=FROM",
        help="if KEY is missing, use FROM's only user:password line",
    )
    parser.add_argument("--api", default="", help="API server URL (default: in-cluster)")
    parser.add_argument("--service-account-dir", type=Path, default=Path(SERVICE_ACCOUNT_DIR))
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- relay webhooks ...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run (after --)")
    files = {key: Path(path) for key, path in parse_mapping(args.file, "--file").items()}
    derive = parse_mapping(args.derive, "--derive")
    api = args.api or "https://{}:{}".format(
        os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    )
    namespace = (args.service_account_dir / "namespace").read_text(encoding="utf-8").strip()
    store = SecretStore(api, namespace, args.secret, args.service_account_dir)
    try:
        synced = seed(store, files, derive)
    except SyncError as error:
        print(f"kube-control: {error}", file=sys.stderr)
        return 1
    child = subprocess.Popen(command)
    try:
        while child.poll() is None:
            time.sleep(args.interval)
            sync(store, files, synced)
        sync(store, files, synced)
    except SyncError as error:
        stop(child)
        print(f"kube-control: {error}; stopped {' '.join(command[:3])}", file=sys.stderr)
        return 1
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
