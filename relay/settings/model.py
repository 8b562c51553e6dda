"""relay.toml's schema: one frozen struct per table, one declaration per option.

Every key is documented in ``config/relay.toml`` and the README's configuration table (a
test holds both to this schema). Unknown keys are an error at start-up: a misspelt option
silently ignored is how a production bridge ends up unauthenticated. Each table checks its
own values in ``__post_init__``; ``Settings`` checks what spans tables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec.structs import force_setattr

from relay.credentials import PAIR_RULE, parse_pair
from relay.secrets import Secret
from relay.settings.errors import ConfigError
from relay.settings.loader import DOTTED_KEYS, Table, load_document, read_toml
from relay.settings.ultracart import UltraCartPoller, resolve_poller

ENV_PREFIX = "RELAY_"
CONFIG_PATH_VAR = "RELAY_CONFIG"


class ServerSettings(Table, frozen=True):
    host: str = "0.0.0.0"
    port: int = 8080
    # Metrics and probes listen apart from intake so they are not exposed with it.
    # 0 serves them on the intake port instead (handy for local runs).
    admin_host: str = "0.0.0.0"
    admin_port: int = 9090
    workers: int = 1
    shutdown_grace_seconds: float = 25.0
    log_level: str = "info"
    log_format: Literal["json", "text"] = "json"
    access_log: bool = False
    keep_alive_seconds: float = 75.0
    # A client that has not sent its whole body by then gets a 408 (slow-loris guard).
    body_timeout_seconds: float = 20.0
    # The request line and headers: a bigger head gets 431, a slower one 408
    # (relay.serving.http_guard).
    max_header_bytes: int = 32 * 1024
    header_timeout_seconds: float = 10.0
    max_concurrent_connections: int = 1000
    # HTTPS on the intake port when both are set (PEM; the certificate file may carry its
    # chain after it). The admin port stays plain HTTP. See relay.serving.tls.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # How often the two files are read for a renewed certificate, loaded without a restart.
    tls_reload_interval_seconds: float = 60.0

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_cert_file and self.tls_key_file)

    def __post_init__(self) -> None:
        force_setattr(self, "log_level", self.log_level.lower())
        for where, port in (("server.port", self.port), ("server.admin_port", self.admin_port)):
            if not 0 <= port <= 65535:
                raise ConfigError(f"{where} must be between 0 and 65535", setting=where)
        if self.port == 0:
            raise ConfigError("server.port must not be 0", setting="server.port")
        if self.admin_port == self.port:
            raise ConfigError(
                "server.admin_port must differ from server.port (or be 0)",
                setting="server.admin_port",
            )
        if self.max_header_bytes < 1024:
            raise ConfigError(
                "server.max_header_bytes must be at least 1024", setting="server.max_header_bytes"
            )
        for where, seconds in (
            ("server.header_timeout_seconds", self.header_timeout_seconds),
            ("server.body_timeout_seconds", self.body_timeout_seconds),
        ):
            if seconds <= 0:
                raise ConfigError(f"{where} must be above 0", setting=where)
        if self.workers < 1:
            raise ConfigError("server.workers must be at least 1", setting="server.workers")
        if self.workers > 1 and self.admin_port == 0:
            raise ConfigError(
                "server.admin_port must not be 0 when server.workers > 1: the supervisor serves "
                "every worker's metrics and the probes on the admin port",
                setting="server.admin_port",
            )
        self._check_tls()

    def _check_tls(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            missing = "server.tls_key_file" if self.tls_cert_file else "server.tls_cert_file"
            raise ConfigError(
                f"{missing} is not set: HTTPS needs both server.tls_cert_file and "
                "server.tls_key_file (set neither for plain HTTP)",
                setting=missing,
            )
        if self.tls_reload_interval_seconds <= 0:
            raise ConfigError(
                "server.tls_reload_interval_seconds must be above 0",
                setting="server.tls_reload_interval_seconds",
            )
        # Whether the files load as a matching pair is checked by relay.serving.preflight,
        # which serve and check-config both run: settings only read configuration.


class IntakeSettings(Table, frozen=True):
    path: str = "/webhooks/ultracart"
    max_body_bytes: int = 10 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_events_per_delivery: int = 10_000
    # UltraCart gives up on a delivery after 30 s; answering 503 well before that lets
    # its retry start instead of a timeout it may count differently.
    ack_deadline_seconds: float = 10.0
    max_inflight_events: int = 100_000
    # Bytes of event data handed to the producer and not yet acknowledged. The events limit
    # alone let a worker hold hundreds of MB of large orders while Kafka was slow.
    max_inflight_bytes: int = 64 * 1024 * 1024
    retry_after_seconds: int = 5
    accepted_content_types: tuple[str, ...] = ("application/json", "text/json")
    # UltraCart does not document its Content-Type; a body without one is read as JSON.
    allow_missing_content_type: bool = True

    def __post_init__(self) -> None:
        force_setattr(
            self, "accepted_content_types", tuple(t.lower() for t in self.accepted_content_types)
        )
        if not self.path.startswith("/"):
            raise ConfigError("intake.path must start with '/'", setting="intake.path")
        if not 0 < self.ack_deadline_seconds < 30:
            raise ConfigError(
                "intake.ack_deadline_seconds must be above 0 and below UltraCart's 30 s",
                setting="intake.ack_deadline_seconds",
            )
        for where, value in (
            ("intake.max_body_bytes", self.max_body_bytes),
            ("intake.max_decompressed_bytes", self.max_decompressed_bytes),
            ("intake.max_events_per_delivery", self.max_events_per_delivery),
            ("intake.max_inflight_events", self.max_inflight_events),
            ("intake.max_inflight_bytes", self.max_inflight_bytes),
        ):
            if value < 1:
                raise ConfigError(f"{where} must be at least 1", setting=where)
        if self.max_events_per_delivery > self.max_inflight_events:
            raise ConfigError(
                "intake.max_events_per_delivery must not exceed max_inflight_events",
                setting="intake.max_events_per_delivery",
            )


class SignatureSettings(Table, frozen=True):
    """Standard Webhooks HMAC-SHA256 check, for deliveries that pass a signing proxy."""

    secrets: tuple[Secret, ...] = ()
    tolerance_seconds: int = 300

    @property
    def enabled(self) -> bool:
        return bool(self.secrets)


class AuthSettings(Table, frozen=True):
    basic_credentials: tuple[Secret, ...] = ()
    basic_credentials_file: str = ""
    reload_interval_seconds: float = 2.0
    signature: SignatureSettings = msgspec.field(default_factory=SignatureSettings)
    # Off by default: relay refuses to start without a credential unless told to.
    allow_unauthenticated: bool = False

    def __post_init__(self) -> None:
        for index, pair in enumerate(self.basic_credentials):
            try:
                parse_pair(pair.reveal())
            except ValueError:
                raise ConfigError(
                    f"auth.basic_credentials[{index}] {PAIR_RULE}", setting="auth.basic_credentials"
                ) from None

    @property
    def basic_enabled(self) -> bool:
        return bool(self.basic_credentials) or bool(self.basic_credentials_file)


class KafkaSettings(Table, frozen=True):
    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "relay"
    # Passed to librdkafka as they are (security.protocol, sasl.*, ssl.*, linger.ms, ...).
    librdkafka: Annotated[Mapping[str, str | int | float | bool], DOTTED_KEYS] = msgspec.field(
        default_factory=dict
    )
    # Who polls the producer for acknowledgements: "thread" (a dedicated poll thread) or
    # "loop" (the event loop, while records are in flight). relay.kafka.delivery_reports;
    # the default follows docs/performance.md's measurement at 4, 32 and 128 connections.
    delivery_reports: Literal["loop", "thread"] = "thread"

    def __post_init__(self) -> None:
        if not self.bootstrap_servers:
            raise ConfigError(
                "kafka.bootstrap_servers must not be empty", setting="kafka.bootstrap_servers"
            )

    def __repr__(self) -> str:
        # librdkafka holds sasl.password, ssl.key.password and the like as plain text (it
        # needs them so), and a repr ends up in logs and tracebacks: only the keys are shown.
        return (
            f"KafkaSettings(bootstrap_servers={self.bootstrap_servers!r}, "
            f"client_id={self.client_id!r}, librdkafka=<{', '.join(sorted(self.librdkafka))}>)"
        )


class TopicPattern(Table, frozen=True):
    match: str = ""
    topic: str = ""

    def __post_init__(self) -> None:
        if not self.match or not self.topic:
            # Said of the pattern msgspec was converting: the loader names it from the path
            # msgspec reports (topics.patterns[N]), which this table cannot know.
            raise ValueError("needs both match and topic")


class TopicSettings(Table, frozen=True):
    template: str = "ultracart.{event}"
    unknown_event_topic: str = "ultracart.unknown"
    dead_letter_topic: str = "ultracart.dead_letter"
    events: Mapping[str, str] = msgspec.field(default_factory=dict)
    patterns: tuple[TopicPattern, ...] = ()

    def __post_init__(self) -> None:
        if "{event}" not in self.template:
            raise ConfigError("topics.template must contain '{event}'", setting="topics.template")


class CloudEventsSettings(Table, frozen=True):
    source: str = "ultracart"
    type_prefix: str = "com.ultracart.webhook."
    # Used for the merchant header when the object itself carries no merchant_id.
    merchant_id: str = ""


FsyncPolicy = Literal["always", "never"]
FSYNC_POLICIES: tuple[str, ...] = get_args(FsyncPolicy)


class SpoolSettings(Table, frozen=True):
    """Local durable log for deliveries Kafka could not take in time (off by default)."""

    enabled: bool = False
    directory: str = "/var/lib/relay/spool"
    max_bytes: int = 1024 * 1024 * 1024
    # "always": a spooled delivery is answered 200 only after fsync. "never": after the
    # write reaches the page cache, which survives relay crashing but not the machine.
    fsync: FsyncPolicy = "always"

    def __post_init__(self) -> None:
        if not self.enabled:
            return
        if not self.directory:
            raise ConfigError(
                "spool.directory must not be empty when the spool is enabled",
                setting="spool.directory",
            )
        if self.max_bytes < 1024 * 1024:
            raise ConfigError("spool.max_bytes must be at least 1 MiB", setting="spool.max_bytes")


class Settings(Table, frozen=True):
    """relay.toml as a whole, built by :meth:`load` (file, then ``RELAY_...`` variables)."""

    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    intake: IntakeSettings = msgspec.field(default_factory=IntakeSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)
    topics: TopicSettings = msgspec.field(default_factory=TopicSettings)
    # Event name or glob -> object fields tried in order for the record key.
    keys: Mapping[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    cloudevents: CloudEventsSettings = msgspec.field(default_factory=CloudEventsSettings)
    # UltraCart webhook status polled into metrics (off by default); see docs/control.md.
    ultracart: UltraCartPoller = msgspec.field(default_factory=UltraCartPoller)
    spool: SpoolSettings = msgspec.field(default_factory=SpoolSettings)

    def __post_init__(self) -> None:
        if self.spool.enabled and self.server.workers != 1:
            # One writer per spool directory (it is locked): workers would refuse each other.
            raise ConfigError(
                "spool.enabled needs server.workers = 1 (one writer per directory)",
                setting="spool.enabled",
            )

    @classmethod
    def load(cls, path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``path`` (or ``$RELAY_CONFIG``), then apply ``RELAY_...`` overrides; the
        poller's secrets are read from the same ``env``."""
        env = os.environ if env is None else env
        chosen = path if path is not None else env.get(CONFIG_PATH_VAR)
        raw = read_toml(Path(chosen)) if chosen else {}
        return cls._build(raw, env, str(chosen) if chosen else None)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
        """Settings from an already-parsed document; no ``RELAY_`` overrides are applied, and
        the poller's secrets are read from ``env`` (default: the process environment)."""
        secrets_env = os.environ if env is None else env
        settings = load_document(cls, raw, {}, prefix=ENV_PREFIX)
        return _checked(settings, secrets_env, None)

    @classmethod
    def _build(cls, raw: Mapping[str, Any], env: Mapping[str, str], file: str | None) -> Settings:
        return _checked(load_document(cls, raw, env, prefix=ENV_PREFIX, file=file), env, file)


def _checked(settings: Settings, env: Mapping[str, str], file: str | None) -> Settings:
    """What only a loaded configuration must satisfy: a ``Settings()`` built in code may
    leave authentication to its caller, a configuration file must choose."""
    auth = settings.auth
    if not (auth.basic_enabled or auth.signature.enabled or auth.allow_unauthenticated):
        raise ConfigError(
            "no intake credential configured: set auth.basic_credentials (or "
            "RELAY_AUTH__BASIC_CREDENTIALS), auth.basic_credentials_file or "
            "auth.signature.secrets; auth.allow_unauthenticated = true accepts anyone",
            setting="auth.basic_credentials",
            file=file,
        )
    poller = resolve_poller(settings.ultracart, env, file)
    return msgspec.structs.replace(settings, ultracart=poller)
