"""Nothing reaches Kafka, the dead-letter topic included, before every configured check passes.

For Basic only, a signature only, and both: each kind of bad body (wrong media type, over the
size limit, malformed, mis-shaped) is sent once by a sender that fails a check and once by
one that passes them all. The first kind must get 401 whatever else is wrong; the second its
own 4xx and a dead letter. Kafka is then read: it must hold exactly the authenticated
senders' dead letters and the marker delivery, nothing else.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx2
import orjson
import pytest

from relay.intake.signature import sign
from relay.secrets import Secret
from tests.support.kafka import consume_all
from tests.support.metrics import metric_sum
from tests.support.relay import CREDENTIALS, RelayProcess

pytestmark = pytest.mark.kafka

SECRET = "whsec_" + base64.b64encode(b"relay-test-signing-key-0123456789").decode()
MAX_BODY = 65536
GOOD = orjson.dumps({"events": [{"order_create": {"order_id": "MARKER-1"}}]})
# Each kind of bad body: (body, extra headers, status for an authenticated sender).
BAD_BODIES: dict[str, tuple[bytes, dict[str, str], int]] = {
    "wrong media type": (GOOD, {"content-type": "text/plain"}, 415),
    "oversized": (b'{"events": [' + b" " * (MAX_BODY + 10) + b"]}", {}, 413),
    "malformed": (b'{"events": [{"order_create": {"order_id": "HALF"}}, ', {}, 400),
    "mis-shaped": (b'{"orders": [{"order_create": {"order_id": "X"}}]}', {}, 422),
}


@dataclass(frozen=True)
class Sender:
    name: str
    basic: tuple[str, str] | None
    # "valid", "bad" or None (no signature headers at all)
    signature: str | None

    def headers(self, body: bytes) -> dict[str, str]:
        out = {"content-type": "application/json"}
        if self.basic is not None:
            token = base64.b64encode(":".join(self.basic).encode()).decode()
            out["authorization"] = f"Basic {token}"
        if self.signature is not None:
            message_id, stamp = "msg_1", int(time.time())
            signed = sign(Secret(SECRET), message_id, stamp, body)
            if self.signature == "bad":
                signed = sign(Secret(SECRET), message_id, stamp, body + b"tampered")
            out.update(
                {
                    "webhook-id": message_id,
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": signed,
                }
            )
        return out


WRONG_PAIR = (CREDENTIALS[0], "wrong-password")
MODES: dict[str, tuple[dict[str, str], list[Sender], Sender]] = {
    "basic only": (
        {},
        [
            Sender("no credentials", None, None),
            Sender("wrong password", WRONG_PAIR, None),
        ],
        Sender("genuine", CREDENTIALS, None),
    ),
    "signature only": (
        {"RELAY_AUTH__BASIC_CREDENTIALS": "", "RELAY_AUTH__SIGNATURE__SECRETS": SECRET},
        [
            Sender("missing signature", None, None),
            Sender("bad signature", None, "bad"),
        ],
        Sender("genuine", None, "valid"),
    ),
    "both": (
        {"RELAY_AUTH__SIGNATURE__SECRETS": SECRET},
        [
            Sender("basic, missing signature", CREDENTIALS, None),
            Sender("basic, bad signature", CREDENTIALS, "bad"),
            Sender("wrong password, good signature", WRONG_PAIR, "valid"),
            Sender("no credentials, good signature", None, "valid"),
        ],
        Sender("genuine", CREDENTIALS, "valid"),
    ),
}


def post(relay: RelayProcess, body: bytes, headers: Mapping[str, str]) -> httpx2.Response:
    return httpx2.post(relay.url, content=body, headers=headers, timeout=30)


@pytest.mark.parametrize("mode", list(MODES))
def test_only_authenticated_senders_reach_kafka(
    mode: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings, intruders, genuine = MODES[mode]
    env = {
        "RELAY_TOPICS__TEMPLATE": topic_prefix + "{event}",
        "RELAY_TOPICS__UNKNOWN_EVENT_TOPIC": topic_prefix + "unknown",
        "RELAY_TOPICS__DEAD_LETTER_TOPIC": topic_prefix + "dead_letter",
        "RELAY_INTAKE__MAX_BODY_BYTES": str(MAX_BODY),
        **settings,
    }
    relay = RelayProcess(kafka_bootstrap, env)
    relay.start()
    try:
        refused = 0
        for sender in intruders:
            for kind, (body, extra, _status) in {**BAD_BODIES, "good body": (GOOD, {}, 0)}.items():
                response = post(relay, body, {**sender.headers(body), **extra})
                assert response.status_code == 401, (sender.name, kind, response.text)
                assert response.json()["error"] == "unauthorized"
                refused += 1
        expected_dead = []
        for kind, (body, extra, status) in BAD_BODIES.items():
            response = post(relay, body, {**genuine.headers(body), **extra})
            if kind == "oversized" and genuine.signature is not None:
                # A signature covers the whole body: one over the limit is never read in
                # full, so it cannot be verified, and an unverified body is not kept.
                assert response.status_code == 401, response.text
                refused += 1
                continue
            assert response.status_code == status, (kind, response.text)
            assert response.json()["message"]
            expected_dead.append(status)
        assert post(relay, GOOD, genuine.headers(GOOD)).status_code == 200
        failures = metric_sum(relay.metrics(), "relay_auth_failures_total")
        assert failures == refused
    finally:
        assert relay.stop() == 0

    # Read to the end (no expected count): exactly the marker, and exactly the dead letters
    # of the authenticated sender, nothing from anyone else.
    events = consume_all(kafka_bootstrap, [topic_prefix + "order_create", topic_prefix + "unknown"])
    assert [r.key for r in events] == [b"MARKER-1"]
    dead = consume_all(kafka_bootstrap, [topic_prefix + "dead_letter"])
    assert sorted(int(r.headers["relay_status"]) for r in dead) == sorted(expected_dead)
