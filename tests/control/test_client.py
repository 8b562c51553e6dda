"""The UltraCart client over real HTTP: paging, 429s, error envelopes, secrets kept out."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from relay.control.client import RetryPolicy, UltraCartClient
from relay.control.credentials import SimpleKey
from relay.control.errors import AuthenticationError, RateLimitedError, UltraCartError
from relay.control.models import Webhook
from relay.secrets import Secret
from tests.control.conftest import SIMPLE_KEY, CliResult, Emulator, write_config
from tests.support.waiting import wait_until

RunCli = Callable[..., CliResult]


def make_client(emulator: Emulator, key: str = SIMPLE_KEY, **kwargs: object) -> UltraCartClient:
    options: dict[str, object] = {
        "retry": RetryPolicy(max_attempts=4, base_delay=0.02, max_delay=0.2),
        "timeout": 5.0,
    }
    options.update(kwargs)
    return UltraCartClient(emulator.base_url, SimpleKey(Secret(key)), **options)  # type: ignore[arg-type]


def hook(n: int) -> Webhook:
    return Webhook(webhook_url=f"https://hooks.example.com/{n}", api_version="2017-03-01")


def test_every_operation_round_trips_within_the_contract(emulator: Emulator) -> None:
    client = make_client(emulator)
    created = client.insert_webhook(
        Webhook(
            webhook_url="http://127.0.0.1:9/hook",
            authentication_type="basic",
            event_categories=[
                {
                    "event_category": "item",
                    "events": [{"event_name": "item_update", "subscribed": True}],
                }
            ],
        )
    )
    oid = created["webhook_oid"]
    # Basic without credentials: UltraCart generates a pair and returns it.
    assert created["basic_username"] and created["basic_password"]
    updated = client.update_webhook(oid, Webhook(maximum_events=25), placeholders=True)
    assert updated["maximum_events"] == 25
    assert len(updated["event_categories"]) == 10  # placeholders: every category
    assert client.reflow(oid, "item_update") == {"event_name": "item_update", "queued": True}
    # Nothing listens on port 9: deliveries fail and are logged.
    emulator.admin("POST", "/_emulator/faults", {"statuses": []})
    logs = wait_until(lambda: list(client.log_summaries(oid)), message="no delivery was logged")
    log = client.log(oid, str(logs[0].get("request_id")))
    assert log["success"] is False and log["status_code"] == 0
    client.delete_webhook(oid)
    client.insert_webhook(hook(1))
    assert client.delete_webhook_by_url("https://hooks.example.com/1")["webhook_url"]
    assert client.list_webhooks() == []
    assert set(emulator.operations()) == {
        "insertWebhook",
        "updateWebhook",
        "resendEvent",
        "getWebhookLogSummaries",
        "getWebhookLog",
        "deleteWebhook",
        "deleteWebhookByUrl",
        "getWebhooks",
    }


def test_list_follows_result_set_paging(emulator: Emulator) -> None:
    client = make_client(emulator, page_size=2)
    for n in range(5):
        client.insert_webhook(hook(n))
    urls = [w["webhook_url"] for w in client.list_webhooks()]
    assert urls == [f"https://hooks.example.com/{n}" for n in range(5)]
    offsets = [e.query for e in emulator.exchanges if e.method == "GET"]
    assert offsets == ["_limit=2&_offset=0", "_limit=2&_offset=2", "_limit=2&_offset=4"]


def test_429_is_retried_with_backoff_and_reported(emulator: Emulator) -> None:
    waits: list[tuple[str, float, int, int]] = []
    client = make_client(emulator, on_wait=lambda *a: waits.append(a))
    emulator.admin("POST", "/_emulator/faults", {"statuses": [429, 429]})
    assert client.list_webhooks() == []
    assert [w[2] for w in waits] == [2, 3]
    assert "rate of 1000 per 3600 second(s) exceeded." in waits[0][0]
    assert [e.status for e in emulator.exchanges] == [429, 429, 200]


def test_429_that_persists_becomes_a_clear_error(emulator: Emulator) -> None:
    client = make_client(emulator)
    emulator.admin("POST", "/_emulator/faults", {"statuses": [429] * 4})
    with pytest.raises(RateLimitedError) as caught:
        client.list_webhooks()
    assert "HTTP 429: rate of 1000 per 3600 second(s) exceeded." in str(caught.value)


def test_concurrent_callers_are_serialised(start_emulator: Callable[..., Emulator]) -> None:
    # With latency, overlapping calls really overlap: UltraCart (and the emulator) answer 429.
    emulator = start_emulator(api_latency_seconds=0.25)
    shared = make_client(emulator)
    errors: list[BaseException] = []

    def call(client: UltraCartClient) -> None:
        try:
            client.list_webhooks()
        except BaseException as error:  # collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=call, args=(shared,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert [e.status for e in emulator.exchanges] == [200] * 4  # one at a time: never a 429

    # Two independent clients do overlap; the loser is told 429 and retries.
    patient = RetryPolicy(max_attempts=8, base_delay=0.2, max_delay=1.0)
    first, second = make_client(emulator, retry=patient), make_client(emulator, retry=patient)
    together = threading.Barrier(2)

    def call_together(client: UltraCartClient) -> None:
        together.wait(5)
        call(client)

    threads = [threading.Thread(target=call_together, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    statuses = [e.status for e in emulator.exchanges[4:]]
    assert 429 in statuses and statuses.count(200) == 2


def test_error_envelope_becomes_a_readable_message(
    emulator: Emulator, run_cli: RunCli, tmp_path: Path
) -> None:
    config = str(write_config(tmp_path / "webhooks.toml", emulator))
    assert run_cli("webhooks", "apply", "--config", config).code == 0
    result = run_cli("webhooks", "log", "no-such-request", "--config", config)
    assert result.code == 1
    assert (
        "UltraCart getWebhookLog failed with HTTP 400: No delivery log with request id "
        "no-such-request" in result.err
    )
    assert "[UltraCart request id " in result.err
    invalid = make_client(emulator)
    with pytest.raises(UltraCartError) as caught:
        invalid.update_webhook(1001, Webhook(maximum_events=0))
    assert caught.value.status == 400
    assert caught.value.message == "maximum_events must be a positive integer"


def test_wrong_key_is_refused_without_echoing_it(
    emulator: Emulator, run_cli: RunCli, tmp_path: Path
) -> None:
    wrong = "wrong-key-ABCDEFGHIJ"
    with pytest.raises(AuthenticationError) as caught:
        make_client(emulator, key=wrong).list_webhooks()
    assert caught.value.status == 401
    assert "Invalid credentials supplied" in str(caught.value)
    assert wrong not in str(caught.value)
    assert len(emulator.exchanges) == 1  # 401 is not retried

    config = write_config(tmp_path / "webhooks.toml", emulator)
    (tmp_path / "simple-key").write_text(wrong)
    result = run_cli("webhooks", "list", "--config", str(config))
    assert result.code == 1
    assert "HTTP 401" in result.err
    assert wrong not in result.err + result.out


def test_missing_version_header_is_refused(emulator: Emulator) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        emulator.base_url + "/webhook/webhooks", headers={"x-ultracart-simple-key": SIMPLE_KEY}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    assert "X-UltraCart-Api-Version" in caught.value.headers["UC-REST-ERROR"]
    caught.value.close()
    emulator.exchanges.clear()  # deliberately off-contract request: not for the contract check


def test_the_cli_says_when_it_waits_for_the_rate_limit(
    emulator: Emulator, run_cli: RunCli, tmp_path: Path
) -> None:
    config = str(write_config(tmp_path / "webhooks.toml", emulator))
    emulator.admin("POST", "/_emulator/faults", {"statuses": [429]})
    result = run_cli("webhooks", "list", "--config", config)
    assert result.code == 0, result.err
    assert "relay: UltraCart rate limit (429): rate of 1000 per 3600 second(s) exceeded." in (
        result.err
    )
    assert "before attempt 2/6" in result.err
