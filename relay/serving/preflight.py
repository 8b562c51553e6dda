"""The checks ``relay serve`` makes before it starts, shared with ``relay check-config``.

Settings.load checks types and ranges; these go further, to what only trying tells: the
credentials file can be read and parsed, librdkafka accepts every option (it rejects
``linger.mss`` only when a client is built), and the TLS certificate and key load. ``check-config``
passing must mean ``serve`` starts, so both call ``preflight``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import KafkaException, Producer

from relay.credentials import read_credentials_file
from relay.kafka.admin import quiet_librdkafka_logger
from relay.kafka.client_config import producer_config
from relay.kafka.errors import translate
from relay.serving.tls import check_pair
from relay.settings import ENV_PREFIX, ConfigError, KafkaSettings, Settings
from relay.settings.loader import env_layer
from relay.spool.errors import NO_SPACE
from relay.spool.files import fsync_directory, make_directory


def preflight(settings: Settings, env: Mapping[str, str] | None = None) -> list[ConfigError]:
    """Every problem found (empty: serve will start), each naming the variable in ``env``
    (default: the process environment) that set its setting, if one did."""
    env = os.environ if env is None else env
    problems = [
        *_credentials(settings),
        *_librdkafka(settings),
        *_tls(settings),
        *_spool_directory(settings),
    ]
    return [p.located(env=env_var_for(p.setting, env)) for p in problems]


def env_var_for(setting: str, env: Mapping[str, str]) -> str | None:
    """The RELAY_* variable that sets ``setting`` (dotted), if one does.

    The environment overrides the file, so a variable that maps to the key is the source.
    """
    if not setting:
        return None
    for name, value in env.items():
        if _setting_of(name, value) == setting:
            return name
    return None


def _setting_of(name: str, value: str) -> str | None:
    """The dotted setting ``name`` overrides, if it is a valid override of one."""
    try:
        _, origins = env_layer(Settings, {name: value}, ENV_PREFIX)
    except ConfigError:
        return None
    return next(iter(origins), None)


def _credentials(settings: Settings) -> list[ConfigError]:
    path = settings.auth.basic_credentials_file
    if not path:
        return []
    setting = "auth.basic_credentials_file"
    try:
        pairs = read_credentials_file(Path(path))
    except FileNotFoundError:
        problem = f"{path} does not exist"
    except PermissionError:
        problem = f"{path} is not readable by this user (uid {os.getuid()})"
    except IsADirectoryError:
        problem = f"{path} is a directory, not a file"
    except OSError as exc:
        problem = f"cannot read {path}: {exc.strerror or exc}"
    except UnicodeDecodeError:
        problem = f"{path} is not UTF-8 text"
    except ValueError as exc:
        # The reader names the line, never its content: it holds a password.
        problem = str(exc)
    else:
        if pairs or settings.auth.basic_credentials or settings.auth.signature.enabled:
            return []
        problem = f"{path} holds no user:password pair, so no sender can get in"
    return [ConfigError(f"{setting}: {problem}", setting=setting)]


def _librdkafka(settings: Settings) -> list[ConfigError]:
    try:
        config = producer_config(settings.kafka, settings.intake)
    except ConfigError as exc:
        return [exc]
    # librdkafka validates names and values only when a client is built.
    refusal = _refusal(config)
    if refusal is None:
        return []
    # librdkafka's sentence names the option in its own words; rather than read it out of
    # them, build a client with each of the operator's options alone to find the culprit.
    own = _with_options(settings.kafka, {})
    setting = "kafka.librdkafka"  # one of relay's own defaults, or options only wrong together
    if _refusal(producer_config(own, settings.intake)) is None:
        for option, value in settings.kafka.librdkafka.items():
            alone = _with_options(settings.kafka, {option: value})
            if _refusal(producer_config(alone, settings.intake)) is not None:
                setting = f"kafka.librdkafka.{option}"
                break
    return [ConfigError(f"{setting}: librdkafka refuses it: {refusal}", setting=setting)]


def _with_options(kafka: KafkaSettings, options: Mapping[str, Any]) -> KafkaSettings:
    return msgspec.structs.replace(kafka, librdkafka=dict(options))


def _refusal(config: dict[str, Any]) -> str | None:
    """librdkafka's reason for refusing ``config``, or None if it builds a client.

    Building a producer connects nothing yet that close() does not end at once.
    """
    try:
        Producer({**config, "logger": quiet_librdkafka_logger()}).close()
    except KafkaException as exc:
        return translate(exc).text
    return None


def _tls(settings: Settings) -> list[ConfigError]:
    """The intake's certificate and key load as a pair (serve would fail to bind HTTPS)."""
    server = settings.server
    if not server.tls_enabled:
        return []
    try:
        check_pair(server.tls_cert_file, server.tls_key_file)
    except ConfigError as exc:
        return [exc]
    return []


def _spool_directory(settings: Settings) -> list[ConfigError]:
    """The spool's directory exists or can be created, takes a file, and syncs.

    Tried for real, with a probe file fsynced and removed, because a read-only volume or
    one whose fsync fails would otherwise surface as a 503 on the first delivery Kafka
    cannot take, perhaps weeks after the start. A full volume is no reason not to start:
    relay still serves straight to Kafka, and answers 503 spool_disk_full only when it
    needs the spool.
    """
    if not settings.spool.enabled:
        return []
    directory = Path(settings.spool.directory)
    probe = directory / f".preflight-{os.getpid()}"
    step = "create"
    try:
        make_directory(directory)
        step = "write a file in"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, b"relay preflight\n")
                step = "fsync a file in"
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.errno not in NO_SPACE:
                raise
        finally:
            probe.unlink(missing_ok=True)
        step = "fsync"
        fsync_directory(directory)
    except OSError as exc:
        reason = f"cannot {step} {directory}: {exc.strerror or exc}"
        return [ConfigError(f"spool.directory: {reason}", setting="spool.directory")]
    return []
