"""The contract checker itself: it must reject what is off-contract, or it proves nothing."""

from __future__ import annotations

import json

import pytest

from relay.emulator.recording import Exchange
from tests.control.contract import Contract, ContractError

HEADERS = {"x-ultracart-api-version": "2017-03-01", "x-ultracart-simple-key": "k"}
OK_BODY = json.dumps({"success": True, "webhooks": [], "metadata": {}}).encode()


def exchange(**changes: object) -> Exchange:
    base = Exchange(
        method="GET",
        path="/rest/v2/webhook/webhooks",
        query="_limit=2&_offset=0",
        request_headers=dict(HEADERS),
        status=200,
        response_headers={"content-type": "application/json"},
        response_body=OK_BODY,
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_a_valid_exchange_passes(contract: Contract) -> None:
    assert contract.check(exchange()) == "getWebhooks"
    assert len(contract.operations) == 8


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"path": "/rest/v2/webhook/hooks"}, "no such operation"),
        ({"query": "_page=2"}, "'_page' not declared"),
        ({"query": "_limit=ten"}, "is not an integer"),
        ({"request_headers": {"x-ultracart-simple-key": "k"}}, "X-UltraCart-Api-Version"),
        ({"request_headers": {"x-ultracart-api-version": "2017-03-01"}}, "simple key or a bearer"),
        ({"status": 404}, "status 404 not declared"),
        (
            {"response_body": b'{"success": true, "webhooks": [{"webhook_oid": "1"}]}'},
            "is not of type 'integer'",
        ),
        ({"response_body": b'{"success": true, "hooks": []}'}, "Additional properties"),
        ({"status": 400, "response_body": b'{"success": false}'}, "UC-REST-ERROR"),
        (
            {
                "method": "DELETE",
                "path": "/rest/v2/webhook/webhooks/5",
                "query": "",
                "status": 204,
                "response_body": b"{}",
            },
            "must have no body",
        ),
        (
            {
                "method": "PUT",
                "path": "/rest/v2/webhook/webhooks/5",
                "query": "",
                "request_headers": {**HEADERS, "content-type": "application/json; charset=UTF-8"},
                "request_body": b'{"maximum_events": 2, "next_retry_after": "soon"}',
            },
            "next_retry_after",
        ),
    ],
)
def test_off_contract_exchanges_are_caught(
    contract: Contract, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ContractError) as caught:
        contract.check(exchange(**changes))
    assert message in str(caught.value)
