"""No configured secret ever shows up in logs, error bodies, probes or metrics.

relay runs as a real process with a Basic pair, a Standard Webhooks signature secret and a
SASL password in its librdkafka options, at debug level (with librdkafka's config dump on),
and is driven through good, badly signed, wrongly authenticated and unauthenticated
deliveries and a broker outage. Then everything it said is searched for every secret, in
the forms a leak would take (as configured, base64, the decoded signing key).
"""

from __future__ import annotations

import base64
import secrets
import time
from pathlib import Path

import httpx2
import orjson
import pytest

from relay.intake.signature import sign
from relay.secrets import Secret
from relay.settings import ConfigError, Settings
from tests.support.broker import LocalBroker
from tests.support.relay import RelayProcess, topic_env

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

USER = "ultracart"


def forms(secret: str) -> set[str]:
    """The secret and the encodings a careless log line or error could carry it in."""
    found = {secret, base64.b64encode(secret.encode()).decode()}
    if secret.startswith("whsec_"):
        key = secret.removeprefix("whsec_")
        found |= {key, base64.b64decode(key).hex()}
    return found


def test_no_secret_leaks_into_logs_bodies_or_metrics(
    private_broker: LocalBroker, topic_prefix: str, tmp_path: Path
) -> None:
    password = "pw-" + secrets.token_urlsafe(16)
    signing = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    sasl_password = "sasl-" + secrets.token_urlsafe(16)
    attempted = "guess-" + secrets.token_urlsafe(12)  # what a prober tried: not logged either
    pair = f"{USER}:{password}"
    env = {
        **topic_env(topic_prefix),
        "RELAY_AUTH__BASIC_CREDENTIALS": pair,
        "RELAY_AUTH__SIGNATURE__SECRETS": signing,
        "RELAY_KAFKA__LIBRDKAFKA__SASL_USERNAME": "relay",
        "RELAY_KAFKA__LIBRDKAFKA__SASL_PASSWORD": sasl_password,
        "RELAY_KAFKA__LIBRDKAFKA__DEBUG": "conf",
        "RELAY_SERVER__LOG_LEVEL": "debug",
        "RELAY_SERVER__ACCESS_LOG": "true",
        "RELAY_INTAKE__ACK_DEADLINE_SECONDS": "2",
    }
    log = tmp_path / "relay.log"
    relay = RelayProcess(private_broker.bootstrap, env, log_path=log)
    relay.start()
    said: list[str] = []

    def deliver(auth: tuple[str, str] | None, signed: bool, tamper: bool = False) -> int:
        body = orjson.dumps({"events": [{"order_create": {"order_id": secrets.token_hex(4)}}]})
        headers = {"content-type": "application/json"}
        if signed:
            stamp = int(time.time())
            headers |= {
                "webhook-id": "msg_1",
                "webhook-timestamp": str(stamp),
                "webhook-signature": sign(Secret(signing), "msg_1", stamp, body),
            }
        if tamper:
            body += b" "
        response = httpx2.post(relay.url, content=body, headers=headers, auth=auth, timeout=30)
        said.append(str(response.headers) + response.text)
        return response.status_code

    try:
        assert deliver((USER, password), signed=True) == 200
        assert deliver((USER, password), signed=True, tamper=True) == 401
        assert deliver((USER, password), signed=False) == 401
        assert deliver((USER, attempted), signed=True) == 401
        assert deliver(None, signed=True) == 401
        private_broker.stop()  # outage: produce failures, readiness flips, client errors
        assert deliver((USER, password), signed=True) == 503
        for path in ("/metrics", "/readyz", "/healthz"):
            said.append(httpx2.get(relay.admin_url + path, timeout=5).text)
    finally:
        relay.stop()
    said.append(log.read_text())

    everything = "\n".join(said)
    assert "sasl.password = [redacted]" in everything  # librdkafka's dump was on, and masked
    for secret in (password, signing, sasl_password, attempted):
        for form in forms(secret):
            assert form not in everything, f"a configured secret leaked ({form[:4]}...)"


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        ({"auth": {"basic_credentials": ["no-colon-SECRET1"]}}, "SECRET1"),
        ({"auth": {"signature": {"secrets": ["whsec_not base64 SECRET2"]}}}, "SECRET2"),
    ],
)
def test_configuration_errors_name_the_key_not_the_value(
    raw: dict[str, object], secret: str
) -> None:
    from relay.serving.app import create_app

    with pytest.raises((ConfigError, ValueError)) as caught:
        create_app(Settings.from_mapping(raw))
    assert secret not in str(caught.value)


def test_settings_print_without_their_secrets() -> None:
    settings = Settings.from_mapping(
        {
            "auth": {"basic_credentials": ["u:SECRET3"], "signature": {"secrets": ["SECRET4"]}},
            "kafka": {"librdkafka": {"sasl.password": "SECRET5", "ssl.key.password": "SECRET6"}},
        }
    )
    assert "SECRET" not in repr(settings)
    assert "SECRET" not in str(settings)
