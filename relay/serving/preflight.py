"""The checks ``relay serve`` makes before it starts, shared with ``relay check-config``.

Settings.load checks types and ranges; these go further, to what only trying tells: the
credentials file can be read and parsed, librdkafka accepts every option (it rejects
``linger.mss`` only when a client is built), and the TLS certificate and key load. ``check-config``
passing must mean ``serve`` starts, so both call ``preflight``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException, Producer

from relay.credentials import read_credentials_file
from relay.kafka.admin import quiet_librdkafka_logger
from relay.kafka.client_config import producer_config
from relay.serving.tls import check_pair
from relay.settings import ENV_PREFIX, ConfigError, Settings
from relay.settings.loader import env_layer
from relay.spool.errors import NO_SPACE
from relay.spool.files import fsync_directory, make_directory


@dataclass(frozen=True)
class Problem:
    """One thing that stops relay from starting. ``env`` names the variable that set it."""

    setting: str
    message: str
    env: str | None = None

    def __str__(self) -> str:
        origin = f" (set by {self.env})" if self.env else ""
        return f"{self.setting}{origin}: {self.message}"

    def to_json(self) -> dict[str, str | None]:
        return {"setting": self.setting or None, "env": self.env, "message": self.message}


def preflight(settings: Settings, env: Mapping[str, str] | None = None) -> list[Problem]:
    """Every problem found (empty: serve will start); ``env`` is where RELAY_* came from."""
    env = os.environ if env is None else env
    problems = [
        *_credentials(settings),
        *_librdkafka(settings),
        *_tls(settings),
        *_spool_directory(settings),
    ]
    return [Problem(p.setting, p.message, p.env or env_var_for(p.setting, env)) for p in problems]


def env_var_for(setting: str, env: Mapping[str, str]) -> str | None:
    """The RELAY_* variable that sets ``setting`` (dotted, as in messages), if one does.

    The environment overrides the file, so a variable that maps to the key is the source.
    """
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


def name_env_vars(message: str, env: Mapping[str, str] | None = None) -> str:
    """``message`` with "(set by RELAY_X)" after each setting in it that a variable set.

    For messages that name the key but not the variable; Settings.load's own errors name
    the variable already, and are left as they are.
    """
    env = os.environ if env is None else env
    named = []
    if any(name.startswith(ENV_PREFIX) and f"{name}: " in message for name in env):
        return message
    for name, value in env.items():
        setting = _setting_of(name, value)
        if setting and re.search(rf"(?<![\w.]){re.escape(setting)}(?![\w.])", message):
            named.append(name)
    return f"{message} (set by {', '.join(sorted(named))})" if named else message


def _credentials(settings: Settings) -> list[Problem]:
    path = settings.auth.basic_credentials_file
    if not path:
        return []
    setting = "auth.basic_credentials_file"
    try:
        pairs = read_credentials_file(Path(path))
    except FileNotFoundError:
        return [Problem(setting, f"{path} does not exist")]
    except PermissionError:
        return [Problem(setting, f"{path} is not readable by this user (uid {os.getuid()})")]
    except IsADirectoryError:
        return [Problem(setting, f"{path} is a directory, not a file")]
    except OSError as exc:
        return [Problem(setting, f"cannot read {path}: {exc.strerror or exc}")]
    except UnicodeDecodeError:
        return [Problem(setting, f"{path} is not UTF-8 text")]
    except ValueError as exc:
        # The reader names the line, never its content: it holds a password.
        return [Problem(setting, str(exc))]
    if not pairs and not settings.auth.basic_credentials and not settings.auth.signature.enabled:
        return [Problem(setting, f"{path} holds no user:password pair, so no sender can get in")]
    return []


_PROPERTY = re.compile(r'property:? "?([A-Za-z0-9._-]+)"?')


def _librdkafka(settings: Settings) -> list[Problem]:
    try:
        config = producer_config(settings.kafka, settings.intake)
    except ConfigError as exc:
        text = str(exc)
        return [Problem(text.split(" ", 1)[0], text.split(" ", 1)[1])]
    config["logger"] = quiet_librdkafka_logger()
    try:
        # librdkafka validates names and values only when a client is built. Building one
        # connects nothing yet that close() does not end at once.
        Producer(config).close()
    except KafkaException as exc:
        reason = str(exc.args[0].str()) if exc.args else str(exc)
        match = _PROPERTY.search(reason)
        option = match.group(1) if match else None
        setting = f"kafka.librdkafka.{option}" if option else "kafka.librdkafka"
        if option is not None and option not in settings.kafka.librdkafka:
            setting = "kafka.librdkafka"  # one of relay's own defaults: a librdkafka mismatch
        return [Problem(setting, reason)]
    return []


def _tls(settings: Settings) -> list[Problem]:
    """The intake's certificate and key load as a pair (serve would fail to bind HTTPS)."""
    server = settings.server
    if not server.tls_enabled:
        return []
    try:
        check_pair(server.tls_cert_file, server.tls_key_file)
    except ConfigError as exc:
        text = str(exc)
        for setting in ("server.tls_cert_file", "server.tls_key_file"):
            if text.startswith(setting + ": "):
                return [Problem(setting, text[len(setting) + 2 :])]
        pair = "server.tls_cert_file and server.tls_key_file "
        if text.startswith(pair):
            # Both files read, but they are not one pair: the key is what does not fit.
            return [
                Problem(
                    "server.tls_key_file",
                    "does not match server.tls_cert_file: " + text[len(pair) :],
                )
            ]
        return [Problem("server.tls_cert_file", text)]
    return []


def _spool_directory(settings: Settings) -> list[Problem]:
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
        return [Problem("spool.directory", f"cannot {step} {directory}: {exc.strerror or exc}")]
    return []
