"""The Benthos party: the stock stream processor a user would pick instead of relay.

Benthos v4.27.0, built by ``deploy/tools/install-benthos`` into the tools cache, configured to
do relay's job as closely as its stock components allow:

- ``http_server`` on relay's intake path; the request's headers arrive as metadata, and a
  mapping throws unless ``Authorization`` is exactly the expected Basic value (a plain
  comparison: Benthos has no constant-time check or credential reload);
- the ``events`` array split into one message per event (``unarchive``), topic
  ``<prefix><event name>``, key the object's ``order_id`` (the benchmark sends only
  ``order_create``; relay picks the identity field per event type);
- CloudEvents-style headers computed per event like relay's: ``ce_id`` (SHA-256 of name,
  NUL and value, first 32 hex digits), ``ce_type``, ``ce_source``, ``ce_specversion``,
  ``ce_time``, ``relay_delivery_id``;
- ``kafka_franz``: franz-go, idempotent (so acks=all), lz4, its own default linger (none);
- the answer (200, empty body) only after Kafka acknowledged every message of the request.

What it does differently, by design of its components: the value is the event object
*re-encoded* by Benthos's JSON (key order and number formatting may change; relay forwards
the bytes UltraCart sent); an unauthenticated or unparsable delivery gets a 502 (a rejected
message), not 401 or 400, and nothing is dead-lettered; with Kafka away it answers 408
after its ``timeout`` instead of a 503 with Retry-After; it is one Go process using every
core, against relay's worker processes.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from bench.child import REPO_ROOT
from tests.support.cache import tools_dir

BINARY_ENV = "BENCH_BENTHOS"
DEFAULT_BINARY = tools_dir() / "benthos"
INSTALLER = REPO_ROOT / "deploy" / "tools" / "install-benthos"
# UltraCart gives up after 30 s; relay's ack deadline is 10 s: the same for Benthos.
TIMEOUT = "10s"
# Transactions the output may have in flight: its default of 10 would cap concurrency far
# below the connections the load generator opens; a user tuning it for throughput would
# raise it like this.
MAX_IN_FLIGHT = 256


def config(
    *,
    port: int,
    admin_port: int,
    path: str,
    bootstrap: str,
    topic_prefix: str,
    credentials: tuple[str, str],
    source: str = "relay",
) -> dict[str, object]:
    basic = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
    check = (
        f'root = if @Authorization != {json.dumps(basic)} {{ throw("unauthorized") }} '
        "else { this.events }\n"
        "meta delivery_id = uuid_v4()\n"
        'meta received = now().ts_format("2006-01-02T15:04:05.000Z07:00", "UTC")\n'
    )
    per_event = (
        "let name = this.keys().index(0)\n"
        "let object = this.get($name)\n"
        "root = $object\n"
        f"meta topic = {json.dumps(topic_prefix)} + $name\n"
        "meta key = $object.order_id.string()\n"
        'meta ce_id = ($name + "\\u0000" + $object.format_json(no_indent: true).string())'
        '.hash("sha256").encode("hex").slice(0, 32)\n'
        'meta ce_specversion = "1.0"\n'
        'meta ce_type = "com.ultracart." + $name\n'
        f"meta ce_source = {json.dumps(source)}\n"
        "meta ce_time = @received\n"
        "meta relay_delivery_id = @delivery_id\n"
    )
    return {
        "http": {"address": f"127.0.0.1:{admin_port}", "debug_endpoints": False},
        "logger": {"level": "WARN", "format": "logfmt"},
        "input": {
            "http_server": {
                "address": f"127.0.0.1:{port}",
                "path": path,
                "allowed_verbs": ["POST"],
                "timeout": TIMEOUT,
            }
        },
        "pipeline": {
            "threads": -1,
            "processors": [
                {"mapping": check},
                {"unarchive": {"format": "json_array"}},
                {"mapping": per_event},
            ],
        },
        "output": {
            "switch": {
                "cases": [
                    {"check": "errored()", "output": {"reject": "${! error() }"}},
                    {
                        "output": {
                            "kafka_franz": {
                                "seed_brokers": [bootstrap],
                                "topic": "${! @topic }",
                                "key": "${! @key }",
                                "idempotent_write": True,
                                "compression": "lz4",
                                "max_in_flight": MAX_IN_FLIGHT,
                                "metadata": {"include_patterns": ["^ce_", "^relay_"]},
                                "timeout": TIMEOUT,
                            }
                        }
                    },
                ]
            }
        },
    }


def binary() -> Path:
    return Path(os.environ.get(BINARY_ENV) or DEFAULT_BINARY)


def write_config(path: Path, document: dict[str, object]) -> Path:
    # JSON is YAML: no YAML writer needed.
    path.write_text(json.dumps(document, indent=2))
    return path
