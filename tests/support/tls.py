"""Certificates made in the test: a private CA, server pairs it signs, and what a client is served.

``SecretVolume`` lays the files out as a Kubernetes Secret volume does (``tls.crt`` and
``tls.key`` are symlinks through ``..data`` to a timestamped directory) and renews them the
way the kubelet does: a new directory, then one atomic rename of the ``..data`` symlink.
"""

from __future__ import annotations

import datetime
import itertools
import os
import socket
import ssl
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_DAY = datetime.timedelta(days=1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class ServerPair:
    cert: x509.Certificate
    cert_pem: bytes  # the certificate, then the CA's (a chain, as ACME clients write it)
    key_pem: bytes

    @property
    def serial(self) -> int:
        return self.cert.serial_number

    @property
    def expiry(self) -> float:
        return self.cert.not_valid_after_utc.timestamp()


class CertificateAuthority:
    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name("relay test CA"))
            .issuer_name(_name("relay test CA"))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name: str, valid_days: float = 10.0) -> ServerPair:
        """A server certificate for 127.0.0.1 and localhost, with a fresh key and serial."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + valid_days * _DAY)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        chain = cert.public_bytes(serialization.Encoding.PEM) + self.cert_pem
        return ServerPair(cert, chain, _key_pem(key))

    def client_context(self) -> ssl.SSLContext:
        """A client that verifies the server against this CA, hostname included."""
        return ssl.create_default_context(cadata=self.cert_pem.decode())


class SecretVolume:
    """``tls.crt`` and ``tls.key`` in ``directory``, laid out and renewed as the kubelet does."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.cert_file = directory / "tls.crt"
        self.key_file = directory / "tls.key"
        self._versions = itertools.count(1)

    def write(self, cert_pem: bytes, key_pem: bytes) -> None:
        version = self.directory / f"..v{next(self._versions)}"
        version.mkdir()
        (version / "tls.crt").write_bytes(cert_pem)
        (version / "tls.key").write_bytes(key_pem)
        staged = self.directory / "..data_tmp"
        staged.symlink_to(version.name)
        os.replace(staged, self.directory / "..data")  # the one atomic step
        for name in ("tls.crt", "tls.key"):
            if not (self.directory / name).is_symlink():
                (self.directory / name).symlink_to(f"..data/{name}")

    def install(self, pair: ServerPair) -> None:
        self.write(pair.cert_pem, pair.key_pem)


def served_certificate(
    port: int, ca: CertificateAuthority, timeout: float = 5.0
) -> x509.Certificate:
    """The certificate a new TLS connection to 127.0.0.1:``port`` is served (verified)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
        ca.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def served_in_memory(server: ssl.SSLContext, ca: CertificateAuthority) -> x509.Certificate:
    """The certificate ``server`` presents to a new handshake, over memory buffers (no socket)."""
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client = ca.client_context().wrap_bio(client_in, client_out, server_hostname="localhost")
    served = server.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(5):
        done = True
        for side, output, peer_input in (
            (client, client_out, server_in),
            (served, server_out, client_in),
        ):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                done = False
            peer_input.write(output.read())
        if done:
            der = client.getpeercert(binary_form=True)
            assert der is not None
            return x509.load_der_x509_certificate(der)
    raise AssertionError("the in-memory TLS handshake did not complete")
