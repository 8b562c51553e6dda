"""``relay serve`` with HTTPS on the intake port, against the real broker.

Clients verify relay against a CA made here, as UltraCart verifies a public one. The
certificate files are laid out and renewed as a Kubernetes Secret volume is (a symlink swap),
and relay is never restarted: a new connection must see the renewed certificate, while a
connection opened before the renewal goes on with the old one.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.kafka import consume_all
from tests.support.relay import CREDENTIALS, RelayProcess, order_delivery, running_relay, topic_env
from tests.support.tls import CertificateAuthority, SecretVolume, ServerPair, served_certificate
from tests.support.waiting import wait_until

pytestmark = pytest.mark.kafka

# Short, so that a renewal shows within the polls below; production's default is 60 s.
RELOAD_INTERVAL = "0.2"
# How long a renewal may take to show, polls of several workers included.
RENEWAL_WAIT = 20.0


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture
def first_pair(ca: CertificateAuthority) -> ServerPair:
    return ca.issue("first.relay.test", valid_days=10)


@pytest.fixture
def volume(tmp_path: Path, first_pair: ServerPair) -> SecretVolume:
    volume = SecretVolume(tmp_path / "tls")
    volume.install(first_pair)
    return volume


@contextmanager
def https_relay(
    bootstrap: str, topic_prefix: str, volume: SecretVolume, log: Path, workers: int = 1
) -> Iterator[RelayProcess]:
    env = {
        **topic_env(topic_prefix),
        "RELAY_SERVER__TLS_CERT_FILE": str(volume.cert_file),
        "RELAY_SERVER__TLS_KEY_FILE": str(volume.key_file),
        "RELAY_SERVER__TLS_RELOAD_INTERVAL_SECONDS": RELOAD_INTERVAL,
        "RELAY_SERVER__WORKERS": str(workers),
    }
    with running_relay(bootstrap, env, log) as process:
        yield process


@pytest.fixture
def relay(
    kafka_bootstrap: str, topic_prefix: str, volume: SecretVolume, tmp_path: Path
) -> Iterator[RelayProcess]:
    with https_relay(kafka_bootstrap, topic_prefix, volume, tmp_path / "relay.log") as process:
        yield process


def https_url(relay: RelayProcess) -> str:
    return f"https://127.0.0.1:{relay.port}/webhooks/ultracart"


def deliver(relay: RelayProcess, ca: CertificateAuthority, order_ids: list[str]) -> list[int]:
    """One delivery per id over HTTPS, each on a new connection (spread over any workers)."""

    def one(order_id: str) -> int:
        with httpx2.Client(verify=ca.client_context(), timeout=30) as client:
            response = client.post(
                https_url(relay),
                content=order_delivery(order_id),
                headers={"content-type": "application/json"},
                auth=CREDENTIALS,
            )
            return response.status_code

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, order_ids))


def tls_metrics(relay: RelayProcess) -> dict[str, float]:
    """relay_tls_* samples as {"reloads_ok": .., "reloads_failed": .., "expiry": ..}."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(relay.metrics()):
        for sample in family.samples:
            if sample.name == "relay_tls_reloads_total":
                found[f"reloads_{sample.labels['outcome']}"] = sample.value
            elif sample.name == "relay_tls_certificate_expiry_timestamp_seconds":
                found["expiry"] = sample.value
    return found


def serial_served(relay: RelayProcess, ca: CertificateAuthority) -> int:
    return served_certificate(relay.port, ca).serial_number


class KeptAlive:
    """One HTTPS connection kept open across requests (HTTP/1.1 keep-alive), by hand."""

    def __init__(self, relay: RelayProcess, ca: CertificateAuthority) -> None:
        raw = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
        self.tls = ca.client_context().wrap_socket(raw, server_hostname="127.0.0.1")
        self.buffer = b""

    def serial(self) -> int:
        from cryptography import x509

        der = self.tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number

    def post(self, body: bytes) -> int:
        import base64

        credential = base64.b64encode(":".join(CREDENTIALS).encode()).decode()
        head = (
            "POST /webhooks/ultracart HTTP/1.1\r\nHost: relay\r\n"
            f"Authorization: Basic {credential}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.tls.sendall(head.encode() + body)
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.tls.recv(65536)
            assert chunk, "relay closed the kept-alive connection"
            self.buffer += chunk
        response_head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in response_head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            rest += self.tls.recv(65536)
        self.buffer = rest[length:]
        return int(response_head.split(b" ", 2)[1])

    def close(self) -> None:
        self.tls.close()


def test_a_delivery_over_https_is_answered_and_reaches_kafka(
    relay: RelayProcess, ca: CertificateAuthority, first_pair: ServerPair, topic_prefix: str
) -> None:
    assert serial_served(relay, ca) == first_pair.serial
    assert deliver(relay, ca, ["TLS-1"]) == [200]
    records = consume_all(relay.bootstrap, [topic_prefix + "order_create"], expected_count=1)
    assert [r.key for r in records] == [b"TLS-1"]
    # Served from the start, before any renewal: operators can alert on it at once.
    assert tls_metrics(relay) == {
        "reloads_ok": 0.0,
        "reloads_failed": 0.0,
        "expiry": first_pair.expiry,
    }


def test_plain_http_on_the_https_port_gets_no_answer(relay: RelayProcess) -> None:
    request = (
        b"POST /webhooks/ultracart HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )
    answer = b""
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as sock:
        sock.sendall(request)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    assert not answer.startswith(b"HTTP/"), answer[:100]
    with pytest.raises(httpx2.TransportError):
        httpx2.post(f"http://127.0.0.1:{relay.port}/webhooks/ultracart", content=b"{}", timeout=10)


def test_a_renewed_certificate_is_served_to_new_connections_without_a_restart(
    relay: RelayProcess, ca: CertificateAuthority, volume: SecretVolume, first_pair: ServerPair
) -> None:
    assert relay.process is not None
    pid = relay.process.pid
    before = KeptAlive(relay, ca)
    try:
        assert before.post(order_delivery("KEEP-1")) == 200
        renewed = ca.issue("renewed.relay.test", valid_days=45)
        volume.install(renewed)

        wait_until(lambda: serial_served(relay, ca) == renewed.serial, RENEWAL_WAIT)
        assert served_certificate(relay.port, ca).subject.rfc4514_string() == (
            "CN=renewed.relay.test"
        )
        assert tls_metrics(relay) == {
            "reloads_ok": 1.0,
            "reloads_failed": 0.0,
            "expiry": renewed.expiry,
        }
        # The connection opened before the renewal goes on, with the certificate it began with.
        assert before.post(order_delivery("KEEP-2")) == 200
        assert before.serial() == first_pair.serial
    finally:
        before.close()
    assert deliver(relay, ca, ["AFTER-1"]) == [200]
    assert relay.process.pid == pid and relay.process.poll() is None


def test_a_broken_renewal_keeps_the_old_certificate_and_counts_a_failure(
    relay: RelayProcess, ca: CertificateAuthority, volume: SecretVolume, first_pair: ServerPair
) -> None:
    renewed = ca.issue("renewed.relay.test", valid_days=45)
    # Half a renewal: the new certificate beside the old key.
    volume.write(renewed.cert_pem, first_pair.key_pem)

    wait_until(lambda: tls_metrics(relay).get("reloads_failed", 0) >= 1, RENEWAL_WAIT)
    assert serial_served(relay, ca) == first_pair.serial
    assert deliver(relay, ca, ["BROKEN-1"]) == [200]
    metrics = tls_metrics(relay)
    assert metrics["reloads_ok"] == 0 and metrics["expiry"] == first_pair.expiry

    # Completed later: picked up at a following check.
    volume.install(renewed)
    wait_until(lambda: serial_served(relay, ca) == renewed.serial, RENEWAL_WAIT)
    assert tls_metrics(relay)["reloads_ok"] == 1


def test_two_workers_serve_https_and_each_loads_the_renewal(
    kafka_bootstrap: str,
    topic_prefix: str,
    ca: CertificateAuthority,
    volume: SecretVolume,
    first_pair: ServerPair,
    tmp_path: Path,
) -> None:
    workers = 2
    log = tmp_path / "relay.log"
    with https_relay(kafka_bootstrap, topic_prefix, volume, log, workers=workers) as relay:
        ids = [f"W-{n}" for n in range(20)]
        assert deliver(relay, ca, ids) == [200] * len(ids)
        records = consume_all(relay.bootstrap, [topic_prefix + "order_create"], len(ids))
        assert sorted(r.key or b"" for r in records) == sorted(i.encode() for i in ids)
        assert tls_metrics(relay)["expiry"] == first_pair.expiry

        renewed = ca.issue("renewed.relay.test", valid_days=45)
        volume.install(renewed)
        # Each worker holds its own context and reloads it: one renewal counts once each.
        wait_until(lambda: tls_metrics(relay).get("reloads_ok") == workers, RENEWAL_WAIT)
        served = {serial_served(relay, ca) for _ in range(20)}
        assert served == {renewed.serial}
        assert tls_metrics(relay)["expiry"] == renewed.expiry


def test_tls_1_2_is_served_and_older_versions_are_refused(
    relay: RelayProcess, ca: CertificateAuthority
) -> None:
    tls12 = ca.client_context()
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", relay.port), timeout=10) as raw,
        tls12.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.2"

    old = ca.client_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 and 1.1 are, rightly
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    # OpenSSL's default security level forbids TLS 1.1 on this side too; level 0 lets the
    # client offer it, so that the refusal is relay's: its alert, or it hanging up (the
    # client's own refusal would be NO_PROTOCOLS_AVAILABLE, before sending anything).
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with (
        socket.create_connection(("127.0.0.1", relay.port), timeout=10) as raw,
        pytest.raises(ssl.SSLError, match=r"ALERT_PROTOCOL_VERSION|UNEXPECTED_EOF"),
    ):
        old.wrap_socket(raw, server_hostname="127.0.0.1")
