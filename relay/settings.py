"""relay's settings: one frozen, validated object built from TOML and the environment.

Every key is documented in ``config/relay.toml``. Unknown keys are an error at start-up:
a misspelt option silently ignored is how a production bridge ends up unauthenticated.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from relay.config_sources import (
    CONFIG_PATH_VAR,
    ConfigError,
    deep_merge,
    env_overrides,
    is_env_text,
    read_toml,
)
from relay.control.status_poller import StatusPollSettings
from relay.secrets import Secret
from relay.tls import check_pair

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "0.0.0.0"
    port: int = 8080
    # Metrics and probes listen apart from intake so they are not exposed with it.
    # 0 serves them on the intake port instead (handy for local runs).
    admin_host: str = "0.0.0.0"
    admin_port: int = 9090
    workers: int = 1
    shutdown_grace_seconds: float = 25.0
    log_level: str = "info"
    log_format: str = "json"
    access_log: bool = False
    keep_alive_seconds: float = 75.0
    # A client that has not sent its whole body by then gets a 408 (slow-loris guard).
    body_timeout_seconds: float = 20.0
    # The request line and headers: a bigger head gets 431, a slower one 408 (relay.http_guard).
    max_header_bytes: int = 32 * 1024
    header_timeout_seconds: float = 10.0
    max_concurrent_connections: int = 1000
    # HTTPS on the intake port when both are set (PEM; the certificate file may carry its
    # chain after it). The admin port stays plain HTTP. See relay.tls.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # How often the two files are read for a renewed certificate, loaded without a restart.
    tls_reload_interval_seconds: float = 60.0

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_cert_file and self.tls_key_file)


@dataclass(frozen=True, slots=True)
class IntakeSettings:
    path: str = "/webhooks/ultracart"
    max_body_bytes: int = 10 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_events_per_delivery: int = 10_000
    # UltraCart gives up on a delivery after 30 s; answering 503 well before that lets
    # its retry start instead of a timeout it may count differently.
    ack_deadline_seconds: float = 10.0
    max_inflight_events: int = 100_000
    retry_after_seconds: int = 5
    accepted_content_types: tuple[str, ...] = ("application/json", "text/json")
    # UltraCart does not document its Content-Type; a body without one is read as JSON.
    allow_missing_content_type: bool = True


@dataclass(frozen=True, slots=True)
class SignatureSettings:
    """Standard Webhooks HMAC-SHA256 check, for deliveries that pass a signing proxy."""

    secrets: tuple[Secret, ...] = ()
    tolerance_seconds: int = 300

    @property
    def enabled(self) -> bool:
        return bool(self.secrets)


@dataclass(frozen=True, slots=True)
class AuthSettings:
    basic_credentials: tuple[Secret, ...] = ()
    basic_credentials_file: str = ""
    reload_interval_seconds: float = 2.0
    signature: SignatureSettings = field(default_factory=SignatureSettings)
    # Off by default: relay refuses to start without a credential unless told to.
    allow_unauthenticated: bool = False

    @property
    def basic_enabled(self) -> bool:
        return bool(self.basic_credentials) or bool(self.basic_credentials_file)


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "relay"
    # Passed to librdkafka as they are (security.protocol, sasl.*, ssl.*, linger.ms, ...).
    # Left out of repr: it holds sasl.password, ssl.key.password and the like as plain text
    # (librdkafka needs them so), and a repr ends up in logs and tracebacks.
    librdkafka: Mapping[str, str | int | float | bool] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class TopicPattern:
    match: str
    topic: str


@dataclass(frozen=True, slots=True)
class TopicSettings:
    template: str = "ultracart.{event}"
    unknown_event_topic: str = "ultracart.unknown"
    dead_letter_topic: str = "ultracart.dead_letter"
    events: Mapping[str, str] = field(default_factory=dict)
    patterns: tuple[TopicPattern, ...] = ()


@dataclass(frozen=True, slots=True)
class CloudEventsSettings:
    source: str = "ultracart"
    type_prefix: str = "com.ultracart.webhook."
    # Used for the merchant header when the object itself carries no merchant_id.
    merchant_id: str = ""


FSYNC_POLICIES = ("always", "never")


@dataclass(frozen=True, slots=True)
class SpoolSettings:
    """Local durable log for deliveries Kafka could not take in time (off by default)."""

    enabled: bool = False
    directory: str = "/var/lib/relay/spool"
    max_bytes: int = 1024 * 1024 * 1024
    # "always": a spooled delivery is answered 200 only after fsync. "never": after the
    # write reaches the page cache, which survives relay crashing but not the machine.
    fsync: str = "always"


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    # Event name or glob -> object fields tried in order for the record key.
    keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cloudevents: CloudEventsSettings = field(default_factory=CloudEventsSettings)
    # UltraCart webhook status polled into metrics (off by default); see docs/control.md.
    ultracart: StatusPollSettings = field(default_factory=StatusPollSettings)
    spool: SpoolSettings = field(default_factory=SpoolSettings)

    @classmethod
    def load(cls, path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``path`` (or ``$RELAY_CONFIG``), then apply ``RELAY_...`` overrides."""
        env = os.environ if env is None else env
        raw: dict[str, Any] = {}
        chosen = path if path is not None else env.get(CONFIG_PATH_VAR)
        if chosen:
            raw = read_toml(Path(chosen))
        return cls.from_mapping(deep_merge(raw, env_overrides(env)))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Settings:
        root = _Table(raw, "")
        settings = Settings(
            server=_server(root.table("server")),
            intake=_intake(root.table("intake")),
            auth=_auth(root.table("auth")),
            kafka=_kafka(root.table("kafka")),
            topics=_topics(root.table("topics")),
            keys=_keys(root.table("keys")),
            cloudevents=_cloudevents(root.table("cloudevents")),
            ultracart=StatusPollSettings.parse(dict(root.table("ultracart").items())),
            spool=_spool(root.table("spool")),
        )
        root.reject_unknown()
        _validate(settings)
        return settings


class _Table:
    """Typed reads from one TOML table, remembering which keys were used."""

    def __init__(self, raw: Mapping[str, Any], name: str) -> None:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"[{name}] must be a table")
        self._raw = raw
        self._name = name
        self._used: set[str] = set()
        self._children: list[_Table] = []

    def _where(self, key: str) -> str:
        return f"{self._name}.{key}" if self._name else key

    def table(self, key: str) -> _Table:
        self._used.add(key)
        child = _Table(self._raw.get(key, {}), self._where(key))
        self._children.append(child)
        return child

    def items(self) -> list[tuple[str, Any]]:
        self._used.update(self._raw)
        return list(self._raw.items())

    def get(self, key: str, default: T, parse: Callable[[Any, str], T]) -> T:
        self._used.add(key)
        if key not in self._raw:
            return default
        return parse(self._raw[key], self._where(key))

    def reject_unknown(self) -> None:
        unknown = sorted(set(self._raw) - self._used)
        if unknown:
            listed = ", ".join(self._where(k) for k in unknown)
            raise ConfigError(f"unknown setting(s): {listed}")
        for child in self._children:
            child.reject_unknown()


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string")
    return str(value)


def _integer(value: Any, where: str) -> int:
    if is_env_text(value):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} must be an integer")
    return value


def _number(value: Any, where: str) -> float:
    if is_env_text(value):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number")
    return float(value)


def _flag(value: Any, where: str) -> bool:
    if is_env_text(value):
        lowered = value.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false")
    return value


def _text_list(value: Any, where: str) -> tuple[str, ...]:
    if is_env_text(value):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return tuple(value)


def _secret_list(value: Any, where: str) -> tuple[Secret, ...]:
    # Error messages name the key, never the value: these are credentials.
    return tuple(Secret(v) for v in _text_list(value, where))


def _scalar(value: Any, where: str) -> str | int | float | bool:
    if isinstance(value, str | int | float | bool):
        return value
    raise ConfigError(f"{where} must be a string, number or boolean")


def _server(t: _Table) -> ServerSettings:
    d = ServerSettings()
    return ServerSettings(
        host=t.get("host", d.host, _text),
        port=t.get("port", d.port, _integer),
        admin_host=t.get("admin_host", d.admin_host, _text),
        admin_port=t.get("admin_port", d.admin_port, _integer),
        workers=t.get("workers", d.workers, _integer),
        shutdown_grace_seconds=t.get("shutdown_grace_seconds", d.shutdown_grace_seconds, _number),
        log_level=t.get("log_level", d.log_level, _text).lower(),
        log_format=t.get("log_format", d.log_format, _text).lower(),
        access_log=t.get("access_log", d.access_log, _flag),
        keep_alive_seconds=t.get("keep_alive_seconds", d.keep_alive_seconds, _number),
        body_timeout_seconds=t.get("body_timeout_seconds", d.body_timeout_seconds, _number),
        max_header_bytes=t.get("max_header_bytes", d.max_header_bytes, _integer),
        header_timeout_seconds=t.get("header_timeout_seconds", d.header_timeout_seconds, _number),
        max_concurrent_connections=t.get(
            "max_concurrent_connections", d.max_concurrent_connections, _integer
        ),
        tls_cert_file=t.get("tls_cert_file", d.tls_cert_file, _text),
        tls_key_file=t.get("tls_key_file", d.tls_key_file, _text),
        tls_reload_interval_seconds=t.get(
            "tls_reload_interval_seconds", d.tls_reload_interval_seconds, _number
        ),
    )


def _intake(t: _Table) -> IntakeSettings:
    d = IntakeSettings()
    return IntakeSettings(
        path=t.get("path", d.path, _text),
        max_body_bytes=t.get("max_body_bytes", d.max_body_bytes, _integer),
        max_decompressed_bytes=t.get("max_decompressed_bytes", d.max_decompressed_bytes, _integer),
        max_events_per_delivery=t.get(
            "max_events_per_delivery", d.max_events_per_delivery, _integer
        ),
        ack_deadline_seconds=t.get("ack_deadline_seconds", d.ack_deadline_seconds, _number),
        max_inflight_events=t.get("max_inflight_events", d.max_inflight_events, _integer),
        retry_after_seconds=t.get("retry_after_seconds", d.retry_after_seconds, _integer),
        accepted_content_types=tuple(
            ct.lower()
            for ct in t.get("accepted_content_types", d.accepted_content_types, _text_list)
        ),
        allow_missing_content_type=t.get(
            "allow_missing_content_type", d.allow_missing_content_type, _flag
        ),
    )


def _auth(t: _Table) -> AuthSettings:
    d = AuthSettings()
    sig = t.table("signature")
    return AuthSettings(
        basic_credentials=t.get("basic_credentials", d.basic_credentials, _secret_list),
        basic_credentials_file=t.get("basic_credentials_file", d.basic_credentials_file, _text),
        reload_interval_seconds=t.get(
            "reload_interval_seconds", d.reload_interval_seconds, _number
        ),
        signature=SignatureSettings(
            secrets=sig.get("secrets", (), _secret_list),
            tolerance_seconds=sig.get("tolerance_seconds", 300, _integer),
        ),
        allow_unauthenticated=t.get("allow_unauthenticated", d.allow_unauthenticated, _flag),
    )


def _kafka(t: _Table) -> KafkaSettings:
    d = KafkaSettings()
    options = t.table("librdkafka")
    return KafkaSettings(
        bootstrap_servers=t.get("bootstrap_servers", d.bootstrap_servers, _text),
        client_id=t.get("client_id", d.client_id, _text),
        librdkafka={k: _scalar(v, f"kafka.librdkafka.{k}") for k, v in options.items()},
    )


def _topics(t: _Table) -> TopicSettings:
    d = TopicSettings()
    events = t.table("events")
    patterns_raw: Any = t.get("patterns", [], lambda v, w: v)
    if not isinstance(patterns_raw, list):
        raise ConfigError("topics.patterns must be an array of tables")
    patterns = []
    for index, entry in enumerate(patterns_raw):
        row = _Table(entry, f"topics.patterns[{index}]")
        patterns.append(
            TopicPattern(match=row.get("match", "", _text), topic=row.get("topic", "", _text))
        )
        row.reject_unknown()
        if not patterns[-1].match or not patterns[-1].topic:
            raise ConfigError(f"topics.patterns[{index}] needs both match and topic")
    return TopicSettings(
        template=t.get("template", d.template, _text),
        unknown_event_topic=t.get("unknown_event_topic", d.unknown_event_topic, _text),
        dead_letter_topic=t.get("dead_letter_topic", d.dead_letter_topic, _text),
        events={name: _text(topic, f"topics.events.{name}") for name, topic in events.items()},
        patterns=tuple(patterns),
    )


def _keys(t: _Table) -> dict[str, tuple[str, ...]]:
    return {name: _text_list(fields, f"keys.{name}") for name, fields in t.items()}


def _cloudevents(t: _Table) -> CloudEventsSettings:
    d = CloudEventsSettings()
    return CloudEventsSettings(
        source=t.get("source", d.source, _text),
        type_prefix=t.get("type_prefix", d.type_prefix, _text),
        merchant_id=t.get("merchant_id", d.merchant_id, _text),
    )


def _spool(t: _Table) -> SpoolSettings:
    d = SpoolSettings()
    return SpoolSettings(
        enabled=t.get("enabled", d.enabled, _flag),
        directory=t.get("directory", d.directory, _text),
        max_bytes=t.get("max_bytes", d.max_bytes, _integer),
        fsync=t.get("fsync", d.fsync, _text).lower(),
    )


def _validate(s: Settings) -> None:
    for where, port in (("server.port", s.server.port), ("server.admin_port", s.server.admin_port)):
        if not 0 <= port <= 65535:
            raise ConfigError(f"{where} must be between 0 and 65535")
    if s.server.port == 0:
        raise ConfigError("server.port must not be 0")
    if s.server.admin_port == s.server.port:
        raise ConfigError("server.admin_port must differ from server.port (or be 0)")
    if s.server.max_header_bytes < 1024:
        raise ConfigError("server.max_header_bytes must be at least 1024")
    if s.server.header_timeout_seconds <= 0 or s.server.body_timeout_seconds <= 0:
        raise ConfigError("server.header_timeout_seconds and body_timeout_seconds must be above 0")
    if s.server.workers < 1:
        raise ConfigError("server.workers must be at least 1")
    if s.server.workers > 1 and s.server.admin_port == 0:
        raise ConfigError(
            "server.admin_port must not be 0 when server.workers > 1: the supervisor serves "
            "every worker's metrics and the probes on the admin port"
        )
    if s.server.log_format not in {"json", "text"}:
        raise ConfigError("server.log_format must be 'json' or 'text'")
    if not s.intake.path.startswith("/"):
        raise ConfigError("intake.path must start with '/'")
    if not 0 < s.intake.ack_deadline_seconds < 30:
        raise ConfigError("intake.ack_deadline_seconds must be above 0 and below UltraCart's 30 s")
    for where, value in (
        ("intake.max_body_bytes", s.intake.max_body_bytes),
        ("intake.max_decompressed_bytes", s.intake.max_decompressed_bytes),
        ("intake.max_events_per_delivery", s.intake.max_events_per_delivery),
        ("intake.max_inflight_events", s.intake.max_inflight_events),
    ):
        if value < 1:
            raise ConfigError(f"{where} must be at least 1")
    if s.intake.max_events_per_delivery > s.intake.max_inflight_events:
        raise ConfigError("intake.max_events_per_delivery must not exceed max_inflight_events")
    for index, pair in enumerate(s.auth.basic_credentials):
        if ":" not in pair.reveal() or pair.reveal().startswith(":"):
            raise ConfigError(f"auth.basic_credentials[{index}] must be 'user:password'")
    if not (s.auth.basic_enabled or s.auth.signature.enabled or s.auth.allow_unauthenticated):
        raise ConfigError(
            "no intake credential configured: set auth.basic_credentials (or "
            "RELAY_AUTH__BASIC_CREDENTIALS), auth.basic_credentials_file or "
            "auth.signature.secrets; auth.allow_unauthenticated = true accepts anyone"
        )
    if "{event}" not in s.topics.template:
        raise ConfigError("topics.template must contain '{event}'")
    if not s.kafka.bootstrap_servers:
        raise ConfigError("kafka.bootstrap_servers must not be empty")
    _validate_tls(s.server)
    _validate_spool(s)


def _validate_tls(server: ServerSettings) -> None:
    if bool(server.tls_cert_file) != bool(server.tls_key_file):
        missing = "server.tls_key_file" if server.tls_cert_file else "server.tls_cert_file"
        raise ConfigError(
            f"{missing} is not set: HTTPS needs both server.tls_cert_file and "
            "server.tls_key_file (set neither for plain HTTP)"
        )
    if server.tls_reload_interval_seconds <= 0:
        raise ConfigError("server.tls_reload_interval_seconds must be above 0")
    if server.tls_enabled:
        # Load the pair now, so check-config and serve refuse what could not be served.
        check_pair(server.tls_cert_file, server.tls_key_file)


def _validate_spool(s: Settings) -> None:
    if s.spool.fsync not in FSYNC_POLICIES:
        raise ConfigError("spool.fsync must be 'always' or 'never'")
    if not s.spool.enabled:
        return
    if not s.spool.directory:
        raise ConfigError("spool.directory must not be empty when the spool is enabled")
    if s.spool.max_bytes < 1024 * 1024:
        raise ConfigError("spool.max_bytes must be at least 1 MiB")
    if s.server.workers != 1:
        # One writer per spool directory (it is locked): workers would refuse each other.
        raise ConfigError("spool.enabled needs server.workers = 1 (one writer per directory)")
