"""Check HTTP exchanges against UltraCart's OpenAPI extract (the contract).

Every request the client sends and every response the emulator gives is checked: the
operation exists for that method and path, parameters are declared and well typed, the
version and credential headers are there, bodies match their schemas, error responses carry
``UC-REST-ERROR``. Schemas are made strict (no undeclared properties) so that a misspelt
field on either side fails instead of passing silently.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from jsonschema import Draft7Validator, FormatChecker

from relay.emulator.recording import Exchange

# A verbatim copy of shared/ultracart/webhook-openapi-extract.json, kept beside the tests so
# they do not depend on where the repository is checked out.
EXTRACT = Path(__file__).with_name("webhook-openapi-extract.json")
API_PREFIX = "/rest/v2"
_METHODS = ("get", "put", "post", "delete")

# Fields the extract's spec version lacks but the current SDK's model has
# (ultracart-rest-sdk 4.1.208, WebhookLogSummary; WEBHOOKS.md section 3, Models). The
# emulator's summaries carry them, as UltraCart's do today; everything else stays strict.
_SDK_FIELDS: dict[str, dict[str, Any]] = {
    "WebhookLogSummary": {
        "status_code": {"type": "integer", "format": "int32"},
        "duration": {"type": "integer", "format": "int32"},
        "event_names": {"type": "array", "items": {"type": "string"}},
        "order_ids": {"type": "array", "items": {"type": "string"}},
    }
}


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: _strict(value) for key, value in node.items()}
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        return node
    if isinstance(node, list):
        return [_strict(item) for item in node]
    return node


def _format_checker() -> FormatChecker:
    checker = FormatChecker()

    @checker.checks("int32")
    def _int32(value: object) -> bool:
        return not isinstance(value, int) or -(2**31) <= value < 2**31

    @checker.checks("int64")
    def _int64(value: object) -> bool:
        return not isinstance(value, int) or -(2**63) <= value < 2**63

    @checker.checks("dateTime", raises=ValueError)
    def _date_time(value: object) -> bool:
        if isinstance(value, str):
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    return checker


class ContractError(AssertionError):
    pass


class Contract:
    def __init__(self, path: Path = EXTRACT) -> None:
        self.spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        components = copy.deepcopy(self.spec["components"])
        for schema, fields in _SDK_FIELDS.items():
            components["schemas"][schema]["properties"].update(fields)
        self._components = _strict(components)
        self._checker = _format_checker()
        self._routes: list[tuple[re.Pattern[str], str, str, dict[str, Any]]] = []
        for template, item in self.spec["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")
            for method in _METHODS:
                if method in item:
                    self._routes.append((pattern, method.upper(), template, item[method]))

    @property
    def operations(self) -> set[str]:
        return {operation["operationId"] for *_rest, operation in self._routes}

    def _validate(self, schema_ref: dict[str, Any], instance: Any, where: str) -> None:
        schema = {**schema_ref, "components": self._components}
        validator = Draft7Validator(schema, format_checker=self._checker)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            details = "; ".join(
                f"{'/'.join(str(p) for p in e.path) or '(root)'}: {e.message[:200]}"
                for e in errors[:5]
            )
            raise ContractError(f"{where}: {details}")

    def operation_for(self, method: str, path: str) -> tuple[str, dict[str, Any], dict[str, str]]:
        if not path.startswith(API_PREFIX):
            raise ContractError(f"{method} {path}: outside {API_PREFIX}")
        local = path[len(API_PREFIX) :]
        for pattern, route_method, template, operation in self._routes:
            match = pattern.match(local)
            if match and route_method == method:
                return template, operation, match.groupdict()
        raise ContractError(f"{method} {path}: no such operation in the extract")

    def check(self, exchange: Exchange) -> str:
        """Validate one exchange; return its operationId."""
        _template, operation, path_params = self.operation_for(exchange.method, exchange.path)
        name = operation["operationId"]
        where = f"{name} {exchange.method} {exchange.path}"
        self._check_request(operation, exchange, path_params, where)
        self._check_response(operation, exchange, where)
        return str(name)

    def _check_request(
        self,
        operation: dict[str, Any],
        exchange: Exchange,
        path_params: dict[str, str],
        where: str,
    ) -> None:
        headers = exchange.request_headers
        if headers.get("x-ultracart-api-version") != "2017-03-01":
            raise ContractError(f"{where}: request without X-UltraCart-Api-Version 2017-03-01")
        if "x-ultracart-simple-key" not in headers and not headers.get(
            "authorization", ""
        ).lower().startswith("bearer "):
            raise ContractError(f"{where}: request without a simple key or a bearer token")
        declared = {p["name"]: p for p in operation.get("parameters", [])}
        for name, value in path_params.items():
            self._check_param(declared, name, value, "path", where)
        query = [part.split("=", 1) for part in exchange.query.split("&") if part]
        for pair in query:
            name = unquote_plus(pair[0])
            value = unquote_plus(pair[1]) if len(pair) > 1 else ""
            self._check_param(declared, name, value, "query", where)
        body = operation.get("requestBody")
        if body is None:
            if exchange.request_body:
                raise ContractError(f"{where}: request body sent, none declared")
            return
        content = body["content"]
        content_type = headers.get("content-type", "")
        if content_type not in content:
            raise ContractError(f"{where}: request Content-Type {content_type!r} not declared")
        if body.get("required") and not exchange.request_body:
            raise ContractError(f"{where}: request body required")
        self._validate(
            content[content_type]["schema"], json.loads(exchange.request_body), where + " request"
        )

    def _check_param(
        self, declared: dict[str, Any], name: str, value: str, location: str, where: str
    ) -> None:
        param = declared.get(name)
        if param is None or param["in"] != location:
            raise ContractError(f"{where}: {location} parameter {name!r} not declared")
        schema = param.get("schema", {})
        kind = schema.get("type")
        parsed: Any = value
        if kind == "integer":
            if not re.fullmatch(r"-?\d+", value):
                raise ContractError(f"{where}: {name}={value!r} is not an integer")
            parsed = int(value)
        elif kind == "boolean":
            if value not in ("true", "false"):
                raise ContractError(f"{where}: {name}={value!r} is not a boolean")
            parsed = value == "true"
        self._validate(schema, parsed, f"{where} parameter {name}")

    def _check_response(self, operation: dict[str, Any], exchange: Exchange, where: str) -> None:
        responses = operation["responses"]
        declared = responses.get(str(exchange.status))
        if declared is None:
            raise ContractError(f"{where}: status {exchange.status} not declared")
        content = declared.get("content")
        if not content:
            if exchange.response_body:
                raise ContractError(f"{where}: {exchange.status} must have no body")
            return
        content_type = exchange.response_headers.get("content-type", "").split(";")[0].strip()
        if content_type not in content:
            raise ContractError(f"{where}: response Content-Type {content_type!r} not declared")
        for header in declared.get("headers", {}):
            if header.lower() not in exchange.response_headers:
                raise ContractError(f"{where}: {exchange.status} without the {header} header")
        self._validate(
            content[content_type]["schema"],
            json.loads(exchange.response_body),
            f"{where} response {exchange.status}",
        )
