"""HTTPS on the intake port: the certificate files checked, and reloaded when they change.

uvicorn builds the intake server's ``SSLContext`` from ``server.tls_cert_file`` and
``server.tls_key_file``. ``CertificateReloader`` reads the two files from the serving event
loop every ``server.tls_reload_interval_seconds`` and, when their content has changed, loads
them again into that same context: new handshakes get the new certificate, connections
already open go on with the one they started with. cert-manager, Kubernetes Secret volumes
(a symlink swap) and ACME clients all replace the files in place of a restart.

A scratch context first: ``load_cert_chain`` is not atomic. When the certificate loads and
the key does not match it (a renewal caught half written), OpenSSL keeps the new certificate
beside the old key, and every handshake fails from then on. So each candidate pair is loaded
into a throwaway context first, and the serving context only ever gets a pair that loaded.

The files are read once per check, and exactly those bytes are checked, loaded into the
serving context, fingerprinted and dated, so a file replaced between the check and the load
cannot reach the serving context unchecked. ``load_cert_chain`` takes paths only: the bytes
are handed to it as anonymous in-memory files (Linux ``memfd``), never written to disk.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from relay.metrics import TlsMetrics
from relay.settings.errors import ConfigError

logger = logging.getLogger(__name__)

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----"
)
_PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")


class _EncryptedKey(Exception):
    """The key file asks for a password; relay has none to give (and must not prompt)."""


def _refuse_password() -> str:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
    raise _EncryptedKey("the key is encrypted; relay needs an unencrypted PEM key")


@dataclass(frozen=True, slots=True)
class _Pair:
    """The two files' content as read in one check (PEM text, not to be logged)."""

    cert_pem: bytes
    key_pem: bytes

    def fingerprint(self) -> bytes:
        # A digest rather than the bytes, so the key does not stay in memory between checks.
        digest = hashlib.sha256(len(self.cert_pem).to_bytes(8, "big") + self.cert_pem)
        digest.update(self.key_pem)
        return digest.digest()


def _read(cert_file: str, key_file: str) -> _Pair:
    # Opening the path follows symlinks as they are now, so a swapped Secret volume is read
    # from its new target.
    return _Pair(Path(cert_file).read_bytes(), Path(key_file).read_bytes())


def _problem(pair: _Pair) -> str | None:
    """Why the pair cannot be loaded, in words an operator can act on; None if it loads."""
    if not _PEM_CERTIFICATE.search(pair.cert_pem):
        return "the certificate file holds no PEM certificate"
    if not _PEM_PRIVATE_KEY.search(pair.key_pem):
        return "the key file holds no PEM private key"
    try:
        _load(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), pair)
    except _EncryptedKey as exc:
        return str(exc)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            return "the key is not the certificate's key"
        # OpenSSL's reasons name what failed, never key material.
        return f"the certificate and key do not load ({exc.reason or exc})"
    return None


def _load(context: ssl.SSLContext, pair: _Pair) -> None:
    with _memory_file(pair.cert_pem) as cert, _memory_file(pair.key_pem) as key:
        context.load_cert_chain(cert, key, password=_refuse_password)


@contextlib.contextmanager
def _memory_file(content: bytes) -> Iterator[str]:
    """A path that reads as ``content``: an anonymous memfd on Linux, else a private temp file."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("relay-tls", os.MFD_CLOEXEC)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="relay-tls-") as private:  # mode 0700
        path = Path(private) / "pem"
        path.write_bytes(content)
        yield str(path)


def certificate_expiry(cert_pem: bytes) -> float | None:
    """The first certificate's notAfter (the one served; the rest is its chain) as unix time.

    A small DER walk rather than a dependency: ``ssl`` can load a certificate but not
    describe one from a file. None when the certificate is not the shape X.509 says.
    """
    match = _PEM_CERTIFICATE.search(cert_pem)
    if match is None:
        return None
    try:
        der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
        _, tbs, _ = _element(der, 0)  # Certificate: tbsCertificate comes first
        _, first, _ = _element(der, tbs)
        tag, field, end = _element(der, first)
        if tag == 0xA0:  # [0] version, absent from v1 certificates
            tag, field, end = _element(der, end)
        # end is past serialNumber now; then signature, issuer, validity.
        for _ in range(3):
            tag, field, end = _element(der, end)
        _, _, not_before_end = _element(der, field)
        tag, field, end = _element(der, not_before_end)
        text = der[field:end].decode("ascii")
        layout = {0x17: "%y%m%d%H%M%SZ", 0x18: "%Y%m%d%H%M%SZ"}[tag]
        return datetime.strptime(text, layout).replace(tzinfo=UTC).timestamp()
    except (ValueError, KeyError, IndexError, UnicodeDecodeError):
        return None


def _element(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at ``pos``."""
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(der[pos : pos + size], "big")
        pos += size
    if pos + length > len(der):
        raise ValueError("truncated DER element")
    return tag, pos, pos + length


def check_pair(cert_file: str, key_file: str) -> None:
    """Raise ConfigError, naming the setting, unless the two files load as a served pair."""
    contents = []
    for where, path in (("server.tls_cert_file", cert_file), ("server.tls_key_file", key_file)):
        try:
            contents.append(Path(path).read_bytes())
        except OSError as exc:
            raise ConfigError(
                f"{where}: cannot read {path}: {exc.strerror or exc}", setting=where
            ) from None
    problem = _problem(_Pair(*contents))
    if problem is not None:
        # Both files read, but they are not one pair: the key is what does not fit.
        raise ConfigError(
            f"server.tls_key_file does not match server.tls_cert_file ({cert_file}, "
            f"{key_file}): {problem}",
            setting="server.tls_key_file",
        )


class CertificateReloader:
    """Loads changed certificate files into the serving context; counts and dates each load."""

    def __init__(
        self,
        context: ssl.SSLContext,
        cert_file: str,
        key_file: str,
        interval_seconds: float,
        metrics: TlsMetrics,
    ) -> None:
        self._context = context
        self._cert_file = cert_file
        self._key_file = key_file
        self._interval = interval_seconds
        self._metrics = metrics
        # Of the pair the serving context holds; None when unknown.
        self._fingerprint: bytes | None = None
        self._started = False

    def start(self) -> None:
        """Read the files uvicorn has just loaded: their fingerprint and expiry, no reload count.

        Loading them again makes what is served exactly what was fingerprinted, even if the
        files changed in between.
        """
        self.check()
        self._started = True

    def check(self) -> bool | None:
        """Reload if the files changed: True when reloaded, False when that failed, else None.

        A failure leaves the serving context as it was, and the same files are tried again
        at the next check, so a half-written renewal is picked up once it is complete.
        """
        try:
            pair = _read(self._cert_file, self._key_file)
        except OSError as exc:
            return self._failed(f"cannot read the files: {exc.strerror or exc}")
        fingerprint = pair.fingerprint()
        if fingerprint == self._fingerprint:
            return None
        problem = _problem(pair)
        if problem is not None:
            return self._failed(problem)
        try:
            _load(self._context, pair)
        except (ssl.SSLError, OSError, _EncryptedKey) as exc:
            # Not expected: these very bytes just loaded into the scratch context.
            self._fingerprint = None
            return self._failed(f"loading into the serving context failed ({exc})")
        self._fingerprint = fingerprint
        expiry = certificate_expiry(pair.cert_pem)
        if expiry is not None:
            self._metrics.certificate_expiry.set(expiry)
        if not self._started:
            return None
        self._metrics.reloads.labels(outcome="ok").inc()
        logger.info(
            "TLS certificate reloaded",
            extra={"cert_file": self._cert_file, "expires": _iso(expiry)},
        )
        return True

    def _failed(self, problem: str) -> bool:
        self._metrics.reloads.labels(outcome="failed").inc()
        logger.error(
            "TLS certificate reload failed; still serving the previous certificate",
            extra={"cert_file": self._cert_file, "key_file": self._key_file, "error": problem},
        )
        return False

    async def watch(self) -> None:
        """Check the files every interval until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            self.check()


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()
