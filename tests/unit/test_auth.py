from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from relay.events.errors import Unauthorized
from relay.intake.basic_auth import BasicCredentials
from relay.intake.signature import SignatureVerifier, sign
from relay.secrets import Secret


def basic(pair: str) -> str:
    return "Basic " + base64.b64encode(pair.encode()).decode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_any_configured_pair_is_accepted() -> None:
    creds = BasicCredentials([Secret("old:one"), Secret("new:two")])
    creds.check(basic("old:one"))
    creds.check(basic("new:two"))


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("Bearer abc", "malformed"),
        ("Basic !!!", "malformed"),
        ("Basic " + base64.b64encode(b"nocolon").decode(), "malformed"),
        (basic("old:wrong"), "bad_credentials"),
        (basic("old:one "), "bad_credentials"),
    ],
)
def test_refusals_carry_a_reason_and_a_generic_message(header: str | None, reason: str) -> None:
    creds = BasicCredentials([Secret("old:one")])
    with pytest.raises(Unauthorized) as caught:
        creds.check(header)
    assert caught.value.reason == reason
    assert "one" not in caught.value.message


def test_credentials_file_is_reloaded_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "basic"
    path.write_text("# rotation\nfirst:pw1\n")
    clock = FakeClock()
    creds = BasicCredentials([], str(path), reload_interval=2.0, clock=clock)
    creds.check(basic("first:pw1"))
    path.write_text("first:pw1\nsecond:pw2\n")
    os.utime(path, ns=(1, 1))  # a distinct mtime even on coarse filesystems
    clock.now += 2.5
    creds.check(basic("second:pw2"))
    path.write_text("second:pw2\n")
    os.utime(path, ns=(2, 2))
    clock.now += 2.5
    with pytest.raises(Unauthorized):
        creds.check(basic("first:pw1"))
    creds.check(basic("second:pw2"))


def test_a_broken_credentials_file_keeps_the_previous_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "basic"
    path.write_text("first:pw1\n")
    clock = FakeClock()
    creds = BasicCredentials([], str(path), reload_interval=1.0, clock=clock)
    for break_it in (lambda: path.write_text("this line is not a pair\n"), path.unlink):
        break_it()
        clock.now += 5
        caplog.clear()
        creds.check(basic("first:pw1"))
        with pytest.raises(Unauthorized):  # kept the set, did not start accepting anything
            creds.check(basic("first:wrong"))
        # The broken file was read, and refused: the set above is the previous one.
        assert "keeping the previous set" in caplog.text


def test_missing_credentials_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        BasicCredentials([], str(tmp_path / "absent"))


SECRET = Secret("whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode())


def signed_headers(body: bytes, timestamp: int, secret: Secret = SECRET) -> dict[str, str]:
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, "msg_1", timestamp, body),
    }


def test_standard_webhooks_signature_accepted_with_any_secret() -> None:
    other = Secret("rotated-raw-secret")
    verifier = SignatureVerifier([other, SECRET], tolerance_seconds=300, clock=lambda: 5000.0)
    for secret in (SECRET, other):
        verifier.verify(signed_headers(b"{}", 4900, secret), b"{}")  # raises if refused
    # Accepted because a configured secret signed it, not because anything passes.
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(signed_headers(b"{}", 4900, Secret("never-configured")), b"{}")
    assert caught.value.reason == "bad_signature"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: h.pop("webhook-signature"), "missing_signature"),
        (lambda h: h.update({"webhook-timestamp": "4000"}), "stale_timestamp"),
        (lambda h: h.update({"webhook-timestamp": "soon"}), "bad_signature"),
        (lambda h: h.update({"webhook-signature": "v1,AAAA"}), "bad_signature"),
        (lambda h: h.update({"webhook-id": "msg_2"}), "bad_signature"),
    ],
)
def test_signature_refusals(mutate: object, reason: str) -> None:
    verifier = SignatureVerifier([SECRET], tolerance_seconds=300, clock=lambda: 5000.0)
    headers = signed_headers(b"{}", 5000)
    assert callable(mutate)
    mutate(headers)
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(headers, b"{}")
    assert caught.value.reason == reason


def test_signature_over_a_different_body_is_refused() -> None:
    verifier = SignatureVerifier([SECRET], clock=lambda: 5000.0)
    with pytest.raises(Unauthorized):
        verifier.verify(signed_headers(b"{}", 5000), b'{"events":[]}')
