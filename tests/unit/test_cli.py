"""relay's command line without a network: parsing, help, exit codes, preflight messages."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import pytest

from relay import cli
from relay.serving.preflight import env_var_for, preflight
from relay.settings import Settings

OPEN = {"RELAY_AUTH__ALLOW_UNAUTHENTICATED": "true"}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only what each test sets: a RELAY_* variable of the caller's must not change answers.
    for name in list(os.environ):
        if name.startswith("RELAY_"):
            monkeypatch.delenv(name)


def run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    *argv: str,
) -> tuple[int, str, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _parsers(parser: argparse.ArgumentParser, path: str = "relay") -> list[tuple[str, Any]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(_parsers(sub, f"{path} {name}"))
    return found


def test_every_command_and_option_has_help() -> None:
    parsers = _parsers(cli.build_parser())
    assert len(parsers) > 15  # relay, serve, ..., webhooks plan, auth login, emulator
    lacking = []
    for path, parser in parsers:
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._VersionAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                lacking += [
                    f"{path} {choice.dest}" for choice in action._choices_actions if not choice.help
                ]
                continue
            if not action.help:
                lacking.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert lacking == []


def test_help_shows_defaults_and_the_exit_code_table(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    top = capsys.readouterr().out
    assert "\nexit codes:\n  0  success" in top
    assert "\n  1  failure: invalid configuration" in top
    assert "\n  2  usage error" in top and "--detailed-exitcode" in top
    with pytest.raises(SystemExit):
        cli.main(["create-topics", "--help"])
    assert "(default: 15.0)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["webhooks", "logs", "--help"])
    assert "(default: 50)" in capsys.readouterr().out


def test_usage_errors_exit_2_and_nothing_else_does(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["check-config", "--no-such-option"])
    assert exited.value.code == 2
    # A configuration error is a failure (1), not a usage error.
    code, _, err = run(capsys, monkeypatch, {"RELAY_SERVER__PORTT": "1"}, "check-config")
    assert code == 1
    assert err.strip() == (
        "relay: configuration error: RELAY_SERVER__PORTT: unknown setting server.portt"
    )


def test_check_config_passes_a_valid_configuration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, monkeypatch, OPEN, "check-config")
    assert (code, err) == (0, "")
    assert out == "configuration is valid: intake on :8080/webhooks/ultracart\n"
    code, out, _ = run(capsys, monkeypatch, OPEN, "check-config", "--json")
    assert code == 0
    assert json.loads(out) == {
        "valid": True,
        "problems": [],
        "kafka": None,
        "intake": ":8080/webhooks/ultracart",
    }


def test_check_config_refuses_a_missing_credentials_file_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"RELAY_AUTH__BASIC_CREDENTIALS_FILE": "/nonexistent"}
    code, out, err = run(capsys, monkeypatch, env, "check-config")
    assert (code, out) == (1, "")
    assert err.strip() == (
        "relay: RELAY_AUTH__BASIC_CREDENTIALS_FILE: auth.basic_credentials_file: "
        "/nonexistent does not exist"
    )


def test_check_config_refuses_an_unknown_librdkafka_option(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**OPEN, "RELAY_KAFKA__LIBRDKAFKA__LINGER_MSS": "5"}
    code, out, err = run(capsys, monkeypatch, env, "check-config", "--json")
    assert code == 1
    document = json.loads(out)
    assert document["valid"] is False
    assert document["problems"] == [
        {
            "setting": "kafka.librdkafka.linger.mss",
            "env": "RELAY_KAFKA__LIBRDKAFKA__LINGER_MSS",
            "file": None,
            "message": "kafka.librdkafka.linger.mss: librdkafka refuses it: No such "
            'configuration property: "linger.mss"',
        }
    ]
    assert err == ""  # --json: the document is the whole output


def test_serve_makes_the_same_checks_before_starting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import relay.serving.run

    def must_not_start(settings: Settings) -> int:
        raise AssertionError("serve started despite a failing preflight")

    monkeypatch.setattr(relay.serving.run, "serve", must_not_start)
    env = {"RELAY_AUTH__BASIC_CREDENTIALS_FILE": "/nonexistent"}
    code, _, err = run(capsys, monkeypatch, env, "serve")
    assert code == 1
    assert (
        "relay: cannot start: RELAY_AUTH__BASIC_CREDENTIALS_FILE: auth.basic_credentials_file"
        in err
    )


def test_preflight_names_the_line_of_a_broken_credentials_file_never_its_content(
    tmp_path: Path,
) -> None:
    path = tmp_path / "credentials"
    path.write_text("# pairs\nultracart:good-one\nno-colon-secret-here\n")
    settings = Settings.from_mapping({"auth": {"basic_credentials_file": str(path)}})
    [problem] = preflight(settings, env={})
    assert problem.setting == "auth.basic_credentials_file"
    assert f'{path}:3 must be "user:password"' in problem.message
    assert "no-colon-secret-here" not in str(problem) and "good-one" not in str(problem)


def test_preflight_refuses_a_credentials_file_without_a_pair(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text("# nothing yet\n")
    settings = Settings.from_mapping({"auth": {"basic_credentials_file": str(path)}})
    [problem] = preflight(settings, env={})
    assert "holds no user:password pair" in problem.message
    path.write_text("ultracart:pass\n")
    assert preflight(settings, env={}) == []


def test_preflight_refuses_a_directory_as_credentials_file(tmp_path: Path) -> None:
    settings = Settings.from_mapping({"auth": {"basic_credentials_file": str(tmp_path)}})
    [problem] = preflight(settings, env={})
    assert problem.message == f"auth.basic_credentials_file: {tmp_path} is a directory, not a file"


def test_preflight_lists_every_problem_at_once(tmp_path: Path) -> None:
    env = {
        "RELAY_AUTH__BASIC_CREDENTIALS_FILE": str(tmp_path / "absent"),
        "RELAY_KAFKA__LIBRDKAFKA__QUEUE_BUFFERING_MAX_KBYTES": "not-a-number",
    }
    problems = preflight(Settings.load(env=env), env=env)
    assert [p.setting for p in problems] == [
        "auth.basic_credentials_file",
        "kafka.librdkafka.queue.buffering.max.kbytes",
    ]
    assert problems[1].env == "RELAY_KAFKA__LIBRDKAFKA__QUEUE_BUFFERING_MAX_KBYTES"


def test_relay_s_own_delivery_options_cannot_be_weakened() -> None:
    env = {**OPEN, "RELAY_KAFKA__LIBRDKAFKA__ACKS": "1"}
    [problem] = preflight(Settings.load(env=env), env=env)
    assert problem.setting == "kafka.librdkafka.acks"
    assert problem.env == "RELAY_KAFKA__LIBRDKAFKA__ACKS"


def test_setting_names_map_back_to_their_variables() -> None:
    env = {"RELAY_SERVER__PORT": "1", "RELAY_KAFKA__LIBRDKAFKA__SASL_MECHANISM": "PLAIN"}
    assert env_var_for("server.port", env) == "RELAY_SERVER__PORT"
    assert env_var_for("kafka.librdkafka.sasl.mechanism", env) == (
        "RELAY_KAFKA__LIBRDKAFKA__SASL_MECHANISM"
    )
    assert env_var_for("server.host", env) is None
    assert env_var_for("server.admin_port", env) is None


def test_a_check_of_a_table_names_the_variable_that_set_its_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, monkeypatch, {**OPEN, "RELAY_SERVER__PORT": "0"}, "check-config")
    assert code == 1
    assert (
        err.strip() == "relay: configuration error: RELAY_SERVER__PORT: server.port must not be 0"
    )
