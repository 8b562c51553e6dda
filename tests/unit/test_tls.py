"""HTTPS settings, the certificate reloader and the intake server's TLS wiring, without Kafka.

What a client is served is read from a real TLS handshake (over memory buffers) against the
very SSLContext the server uses, with certificates this test makes.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from relay.metrics import TlsMetrics
from relay.serving.app import build_intake
from relay.serving.preflight import preflight
from relay.serving.server import Servers
from relay.serving.tls import CertificateReloader, certificate_expiry
from relay.settings import ConfigError, Settings
from tests.support.fake_sink import FakeSink
from tests.support.settings import CREDENTIAL_ENV, settings_with
from tests.support.tls import CertificateAuthority, SecretVolume, ServerPair, served_in_memory

# (the new pair, the pair served before) -> the files a broken renewal leaves behind
Breakage = Callable[[ServerPair, ServerPair], tuple[bytes, bytes]]


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture
def volume(tmp_path: Path, ca: CertificateAuthority) -> SecretVolume:
    volume = SecretVolume(tmp_path / "tls")
    volume.install(ca.issue("first.relay.test"))
    return volume


def tls_settings(cert: Path | str, key: Path | str, **server: object) -> Settings:
    # The admin port relay has by default: the TLS tests check that it stays plain.
    return settings_with(
        server={"admin_port": 9090, "tls_cert_file": str(cert), "tls_key_file": str(key), **server}
    )


def refused(cert: Path | str, key: Path | str) -> str:
    """What serve and check-config say of this pair (settings accept any two paths; the
    files are loaded by the preflight both run)."""
    problems = preflight(tls_settings(cert, key), env={})
    assert problems, "the pair was accepted"
    return "; ".join(str(problem) for problem in problems)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


# -- settings ---------------------------------------------------------------------------


def test_a_pair_that_loads_turns_https_on(volume: SecretVolume) -> None:
    settings = tls_settings(volume.cert_file, volume.key_file)
    assert settings.server.tls_enabled
    assert settings.server.tls_reload_interval_seconds == 60.0
    assert not settings_with().server.tls_enabled


@pytest.mark.parametrize(
    ("server", "missing"),
    [
        ({"tls_cert_file": "/etc/relay/tls.crt"}, "server.tls_key_file is not set"),
        ({"tls_key_file": "/etc/relay/tls.key"}, "server.tls_cert_file is not set"),
    ],
)
def test_half_an_https_configuration_is_refused(server: dict[str, str], missing: str) -> None:
    with pytest.raises(ConfigError, match=missing):
        settings_with(server=server)


def test_half_an_https_configuration_from_the_environment_is_refused() -> None:
    env = {**CREDENTIAL_ENV, "RELAY_SERVER__TLS_CERT_FILE": "/x.crt"}
    with pytest.raises(ConfigError, match=r"server\.tls_key_file is not set"):
        Settings.load(env=env)


def test_a_key_of_another_certificate_is_refused(
    volume: SecretVolume, ca: CertificateAuthority, tmp_path: Path
) -> None:
    other = tmp_path / "other.key"
    other.write_bytes(ca.issue("other.relay.test").key_pem)
    message = refused(volume.cert_file, other)
    assert "server.tls_key_file does not match server.tls_cert_file" in message
    assert "the key is not the certificate's key" in message
    assert "PRIVATE KEY" not in message


def test_an_unreadable_file_is_named(volume: SecretVolume, tmp_path: Path) -> None:
    assert re.search(
        r"server.tls_key_file: cannot read .*missing.key",
        refused(volume.cert_file, tmp_path / "missing.key"),
    )
    assert "server.tls_cert_file: cannot read" in refused(tmp_path, volume.key_file)  # a dir


def test_files_that_are_not_pem_are_refused(volume: SecretVolume, tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a certificate\n")
    assert "holds no PEM certificate" in refused(junk, volume.key_file)
    assert "holds no PEM private key" in refused(volume.cert_file, junk)


def test_an_encrypted_key_is_refused_without_prompting(
    volume: SecretVolume, ca: CertificateAuthority, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization

    pair = ca.issue("encrypted.relay.test")
    key = serialization.load_pem_private_key(pair.key_pem, password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"hunter2"),
    )
    volume.write(pair.cert_pem, encrypted)
    assert "the key is encrypted" in refused(volume.cert_file, volume.key_file)


def test_the_reload_interval_must_be_positive(volume: SecretVolume) -> None:
    with pytest.raises(ConfigError, match="tls_reload_interval_seconds must be above 0"):
        tls_settings(volume.cert_file, volume.key_file, tls_reload_interval_seconds=0)


# -- expiry -------------------------------------------------------------------------------


@pytest.mark.parametrize("valid_days", [1.5, 365 * 40])  # UTCTime, then GeneralizedTime (2050+)
def test_expiry_is_the_served_certificates_not_after(
    ca: CertificateAuthority, valid_days: float
) -> None:
    pair = ca.issue("expiry.relay.test", valid_days=valid_days)
    # The chain file holds the CA after the leaf; the leaf is the one that counts.
    assert certificate_expiry(pair.cert_pem) == pair.expiry
    assert certificate_expiry(b"no certificate here") is None
    assert (
        certificate_expiry(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----") is None
    )


# -- the reloader -------------------------------------------------------------------------


class Served:
    """A server context loaded as uvicorn loads it, with a reloader over it."""

    def __init__(self, volume: SecretVolume) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(volume.cert_file, volume.key_file)
        self.registry = CollectorRegistry()
        self.reloader = CertificateReloader(
            self.context,
            str(volume.cert_file),
            str(volume.key_file),
            60.0,
            TlsMetrics(self.registry),
        )
        self.reloader.start()

    def reloads(self, outcome: str) -> float | None:
        return value(self.registry, "relay_tls_reloads_total", outcome=outcome)

    @property
    def expiry(self) -> float | None:
        return value(self.registry, "relay_tls_certificate_expiry_timestamp_seconds")


def test_a_renewed_pair_is_served_to_new_handshakes(
    volume: SecretVolume, ca: CertificateAuthority
) -> None:
    served = Served(volume)
    first = served_in_memory(served.context, ca)
    assert served.expiry == first.not_valid_after_utc.timestamp()
    assert served.reloader.check() is None  # unchanged files: nothing to do
    assert (served.reloads("ok"), served.reloads("failed")) == (0, 0)

    renewed = ca.issue("renewed.relay.test", valid_days=20)
    volume.install(renewed)
    assert served.reloader.check() is True
    now_served = served_in_memory(served.context, ca)
    assert now_served.serial_number == renewed.serial != first.serial_number
    assert served.expiry == renewed.expiry
    assert served.reloads("ok") == 1
    assert served.reloader.check() is None


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda new, old: (new.cert_pem, old.key_pem), id="new-cert-old-key"),
        pytest.param(lambda new, old: (new.cert_pem[:200], new.key_pem), id="truncated-cert"),
        pytest.param(lambda new, old: (new.cert_pem, b""), id="empty-key"),
    ],
)
def test_a_broken_renewal_keeps_the_old_certificate_until_it_is_complete(
    volume: SecretVolume, ca: CertificateAuthority, broken: Breakage
) -> None:
    served = Served(volume)
    old = served_in_memory(served.context, ca)
    old_pair = ServerPair(old, volume.cert_file.read_bytes(), volume.key_file.read_bytes())
    new = ca.issue("renewed.relay.test", valid_days=20)
    volume.write(*broken(new, old_pair))

    assert served.reloader.check() is False
    assert served_in_memory(served.context, ca).serial_number == old.serial_number
    assert served.expiry == old.not_valid_after_utc.timestamp()
    # Tried again at every check while the files stay broken.
    assert served.reloader.check() is False
    assert served.reloads("failed") == 2

    volume.install(new)
    assert served.reloader.check() is True
    assert served_in_memory(served.context, ca).serial_number == new.serial
    assert (served.reloads("ok"), served.reloads("failed")) == (1, 2)


def test_files_gone_missing_keep_the_old_certificate(
    volume: SecretVolume, ca: CertificateAuthority
) -> None:
    served = Served(volume)
    old = served_in_memory(served.context, ca)
    volume.key_file.unlink()
    assert served.reloader.check() is False
    assert served_in_memory(served.context, ca).serial_number == old.serial_number


# -- the intake server's wiring -------------------------------------------------------------


def test_intake_serves_tls_from_the_adopted_context_and_admin_stays_plain(
    volume: SecretVolume, ca: CertificateAuthority
) -> None:
    settings = tls_settings(volume.cert_file, volume.key_file)
    servers = Servers(settings, lambda s: build_intake(s, sink=FakeSink()), sockets=[])
    context = servers.intake.config.ssl
    assert context is not None and servers.tls is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert servers.admin is not None and not servers.admin.config.is_ssl

    renewed = ca.issue("renewed.relay.test")
    volume.install(renewed)
    assert servers.tls.check() is True
    # The reloader changed the very context uvicorn hands to every accepted connection.
    assert served_in_memory(context, ca).serial_number == renewed.serial
    metrics = servers.runtime.metrics.registry
    assert value(metrics, "relay_tls_reloads_total", outcome="ok") == 1


def test_plain_http_exports_no_tls_metrics() -> None:
    servers = Servers(
        settings_with(server={"admin_port": 9090}),
        lambda s: build_intake(s, sink=FakeSink()),
        sockets=[],
    )
    assert servers.tls is None and servers.intake.config.ssl_certfile is None
    names = {family.name for family in servers.runtime.metrics.registry.collect()}
    assert not {name for name in names if name.startswith("relay_tls")}
