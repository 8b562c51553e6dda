"""relay against a SASL_SSL listener with SCRAM-SHA-512, as managed Kafka clusters run it.

A private broker gets a second listener, SASL_SSL, with a certificate from a CA made here
and a SCRAM user added when its storage is formatted. relay is configured only through its
documented managed-Kafka settings (docs/deploy.md): security protocol, SASL mechanism,
username, password and the CA file.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.support.broker import LocalBroker
from tests.support.kafka import consume_all, create_topics
from tests.support.net import free_ports
from tests.support.relay import RelayProcess, order_delivery, topic_env
from tests.support.tls import CertificateAuthority

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

USER = "relay-producer"


@dataclass(frozen=True)
class SaslBroker:
    broker: LocalBroker
    sasl_bootstrap: str
    ca_file: Path
    password: str

    def client_config(self, password: str | None = None) -> dict[str, str]:
        """librdkafka options of a client of the SASL_SSL listener."""
        return {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": USER,
            "sasl.password": self.password if password is None else password,
            "ssl.ca.location": str(self.ca_file),
        }

    def relay_env(self, password: str | None = None) -> dict[str, str]:
        """The same, as relay's documented environment settings."""
        password = self.password if password is None else password
        return {
            "RELAY_KAFKA__LIBRDKAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "RELAY_KAFKA__LIBRDKAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
            "RELAY_KAFKA__LIBRDKAFKA__SASL_USERNAME": USER,
            "RELAY_KAFKA__LIBRDKAFKA__SASL_PASSWORD": password,
            "RELAY_KAFKA__LIBRDKAFKA__SSL_CA_LOCATION": str(self.ca_file),
        }


@pytest.fixture(scope="module")
def sasl_broker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SaslBroker]:
    """A broker with PLAINTEXT (its own and the tests' set-up) and SASL_SSL listeners."""
    # kafka_bootstrap first: the shared broker's start resolves the Kafka jars for this one.
    directory = tmp_path_factory.mktemp("sasl-broker")
    ca = CertificateAuthority()
    pair = ca.issue("kafka-broker")
    # Kafka reads a PEM keystore as the PKCS#8 key followed by the certificate chain.
    keystore = directory / "broker.pem"
    keystore.write_bytes(pair.key_pem + pair.cert_pem)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    # Hex only: the format tool's [name=...,password=...] syntax has no quoting.
    password = secrets.token_hex(16)
    port, controller, sasl_port = free_ports(3)
    scram_user = f"SCRAM-SHA-512=[name={USER},password={password}]"
    properties = directory / "sasl.properties"
    properties.write_text(
        f"listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sasl_port},"
        f"CONTROLLER://127.0.0.1:{controller}\n"
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sasl_port}\n"
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
        "SASL_SSL:SASL_SSL\n"
        "sasl.enabled.mechanisms=SCRAM-SHA-512\n"
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
        "ssl.keystore.type=PEM\n"
        f"ssl.keystore.location={keystore}\n"
    )
    broker = LocalBroker(
        port,
        env={
            "RELAY_KAFKA_CONTROLLER_PORT": str(controller),
            "RELAY_KAFKA_EXTRA_PROPERTIES": str(properties),
            "RELAY_KAFKA_FORMAT_ARGS": f"--add-scram {scram_user}",
        },
    )
    broker.start(fresh=True)
    try:
        yield SaslBroker(broker, f"127.0.0.1:{sasl_port}", ca_file, password)
    finally:
        broker.stop()


def test_relay_publishes_through_sasl_ssl(
    sasl_broker: SaslBroker, topic_prefix: str, tmp_path: Path
) -> None:
    topic = topic_prefix + "order_create"
    create_topics(sasl_broker.broker.bootstrap, [topic])
    env = {**topic_env(topic_prefix), **sasl_broker.relay_env()}
    relay = RelayProcess(sasl_broker.sasl_bootstrap, env, log_path=tmp_path / "relay.log")
    relay.start()
    try:
        response = relay.post(order_delivery("sasl-1", "sasl-2"))
    finally:
        assert relay.stop() == 0

    assert response.status_code == 200, response.text
    # Read back over the same listener, so the records demonstrably went through it.
    records = consume_all(
        sasl_broker.sasl_bootstrap,
        [topic],
        expected_count=2,
        client_config=sasl_broker.client_config(),
    )
    assert sorted(r.key or b"" for r in records) == [b"sasl-1", b"sasl-2"]
    log = (tmp_path / "relay.log").read_text()
    assert sasl_broker.password not in log


def test_wrong_password_is_a_503_and_one_clear_log_line(
    sasl_broker: SaslBroker, topic_prefix: str, tmp_path: Path
) -> None:
    wrong = "wrong-" + secrets.token_hex(12)
    env = {
        **topic_env(topic_prefix),
        **sasl_broker.relay_env(password=wrong),
        "RELAY_INTAKE__ACK_DEADLINE_SECONDS": "2",
    }
    log_path = tmp_path / "relay.log"
    relay = RelayProcess(sasl_broker.sasl_bootstrap, env, log_path=log_path)
    relay.start(wait_ready=False)
    try:
        started = time.monotonic()
        response = relay.post(order_delivery("never"))
        answered_in = time.monotonic() - started
        readiness = relay.readiness()
        time.sleep(3)  # a few reconnect attempts, to count the log lines they cause
        assert relay.process is not None and relay.process.poll() is None, "relay exited"
    finally:
        exit_code = relay.stop()

    assert response.status_code == 503, response.text
    assert answered_in < 10, "the delivery waited instead of being refused"
    assert readiness.status_code == 503
    assert exit_code == 0
    log = log_path.read_text()
    for secret in (wrong, sasl_broker.password):
        assert secret not in log and secret not in response.text
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    told = [
        line
        for line in lines
        if line["logger"] == "relay.kafka.publisher" and "credentials" in line["message"]
    ]
    # One line of relay's, saying what to check, however often librdkafka reconnected.
    assert len(told) == 1, f"expected one line about the credentials:\n{log[-3000:]}"
    assert told[0]["level"] == "error" and told[0]["error"] == "_AUTHENTICATION"
    # librdkafka's own line for the failure is kept, but not repeated per reconnect.
    echoed = [line for line in lines if "SASL authentication error" in line["message"]]
    assert len(echoed) <= 1, echoed
