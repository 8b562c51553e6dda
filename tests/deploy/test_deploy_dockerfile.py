"""The Dockerfile, read statically (no Docker engine here) and held against relay's defaults,
the chart and the build context."""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from relay.cli import build_parser
from relay.settings import ServerSettings, Settings, SpoolSettings
from tests.deploy.support import CHART_DIR, REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        text = self.args
        # HEALTHCHECK options precede CMD; the exec form is the JSON array after it.
        if self.keyword == "HEALTHCHECK":
            text = text[text.index("CMD") + 3 :]
        parsed = yaml.safe_load(text.strip())
        assert isinstance(parsed, list), f"{self.keyword} must use the exec (JSON) form"
        return [str(item) for item in parsed]


def instructions() -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped."""
    found = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue
        pending += stripped.removesuffix("\\").strip() + " "
        if not stripped.endswith("\\"):
            keyword, _, args = pending.strip().partition(" ")
            found.append(Instruction(keyword.upper(), args.strip()))
            pending = ""
    assert not pending, "dangling line continuation"
    return found


def stages() -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def final_stage() -> list[Instruction]:
    return stages()[-1]


def only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text("utf-8"))
    return values


def test_multi_stage_on_a_pinned_slim_base() -> None:
    (arg,) = [i for i in instructions() if i.keyword == "ARG" and i.args.startswith("PYTHON_")]
    name, _, image = arg.args.partition("=")
    assert name == "PYTHON_IMAGE"
    # A full patch version, never a moving tag such as 3.11-slim.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image
    froms = [stage[0].args for stage in stages()]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]


def test_final_stage_runs_as_the_chart_user() -> None:
    stage = final_stage()
    user = only(stage, "USER").args
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) != 0, "numeric, non-root"
    run = " ".join(i.args for i in stage if i.keyword == "RUN")
    assert f"--uid {uid}" in run and f"--gid {gid}" in run
    pod = chart_values()["podSecurityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (int(uid), int(gid), int(gid))


def test_final_stage_holds_only_the_runtime() -> None:
    stage = final_stage()
    copies = [i.args for i in stage if i.keyword == "COPY"]
    assert "--from=build /opt/relay /opt/relay" in copies
    for instruction in stage:
        if instruction.keyword == "RUN":
            assert "pip" not in instruction.args and "apt-get" not in instruction.args
    build_runs = " ".join(i.args for i in stages()[0] if i.keyword == "RUN")
    assert "pip uninstall --yes pip setuptools" in build_runs


def test_ports_healthcheck_and_command_match_relay() -> None:
    stage = final_stage()
    server = ServerSettings()
    assert set(only(stage, "EXPOSE").args.split()) == {str(server.port), str(server.admin_port)}
    check = only(stage, "HEALTHCHECK").exec_form()
    assert check[:2] == ["python", "-c"]
    compile(check[2], "<healthcheck>", "exec")
    assert "/healthz" in check[2] and f"'{server.admin_port}'" in check[2]
    assert "RELAY_SERVER__ADMIN_PORT" in check[2]
    entrypoint = only(stage, "ENTRYPOINT").exec_form()
    command = only(stage, "CMD").exec_form()
    assert entrypoint == ["relay"]
    assert build_parser().parse_args(command).command == "serve"
    assert only(stage, "STOPSIGNAL").args == "SIGTERM"


def test_workers_come_from_the_environment() -> None:
    env = env_of(final_stage())
    # A RELAY_<SECTION>__<KEY> in the image would override every mounted relay.toml (the
    # chart's ConfigMap included), so the image sets none; the run-time environment does.
    assert not [name for name in env if name.startswith("RELAY_") and "__" in name]
    assert env["RELAY_CONFIG"] == "/etc/relay/relay.toml"
    settings = Settings.load(
        REPO_ROOT / "config" / "relay.toml",
        env={"RELAY_SERVER__WORKERS": "3", "RELAY_AUTH__BASIC_CREDENTIALS": "u:p"},
    )
    assert settings.server.workers == 3


def test_image_directories_match_relay_defaults() -> None:
    run = " ".join(i.args for i in final_stage() if i.keyword == "RUN")
    assert SpoolSettings().directory in run.split()
    assert chart_values()["spool"]["directory"] == SpoolSettings().directory
    assert "/etc/relay/secrets" in run.split()


def _allowed(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics, for the patterns used there: the last match decides."""
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        if body.startswith("**/"):
            matches = any(
                fnmatch.fnmatch(part, body[3:]) for part in Path(path).parts
            ) or fnmatch.fnmatch(Path(path).name, body[3:])
        else:
            matches = fnmatch.fnmatch(path, body) or path.startswith(body + "/")
        if matches:
            included = negated
    return included


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_build_context_holds_what_the_dockerfile_copies(ignore_patterns: list[str]) -> None:
    assert ignore_patterns[0] == "*", "an allow-list: nothing enters the context by default"
    for instruction in instructions():
        if instruction.keyword != "COPY" or instruction.args.startswith("--from"):
            continue
        *sources, _target = instruction.args.split()
        for source in sources:
            assert (REPO_ROOT / source).exists(), f"COPY {source}: missing"
            assert _allowed(source.rstrip("/"), ignore_patterns), f"{source} is ignored"
    for secretish in (
        ".venv/bin/python",
        ".git/config",
        ".cache/tools/helm",
        "var/x",
        "tests/x.py",
    ):
        assert not _allowed(secretish, ignore_patterns), f"{secretish} would enter the image"
    assert not _allowed("relay/__pycache__/app.cpython-311.pyc", ignore_patterns)
    assert _allowed("relay/serving/app.py", ignore_patterns)


def test_dependencies_come_from_the_lock_with_hashes() -> None:
    build = stages()[0]
    copies = [i.args for i in build if i.keyword == "COPY"]
    runs = [i.args for i in build if i.keyword == "RUN"]
    assert copies[0] == "requirements.lock ./", "the lock layer comes before relay's code"
    (lock_install,) = [run for run in runs if "-r requirements.lock" in run]
    assert "--require-hashes" in lock_install.split()
    assert "--no-deps" in lock_install.split()
    # The project itself adds nothing unlocked, and the build fails if the lock is stale.
    (project_install,) = [run for run in runs if "pip install --no-deps ." in run]
    assert "pip check" in project_install


def test_import_check_cannot_be_answered_by_the_source_tree() -> None:
    (check,) = [i.args for i in stages()[0] if i.keyword == "RUN" and "import relay" in i.args]
    # From / and with -I (no cwd, no PYTHON* variables on sys.path), so /src cannot shadow
    # the installed package the way it did when an empty stub was installed instead.
    before, _, python = check.partition("cd / && ")
    assert before and python.startswith("/opt/relay/bin/python -I -c ")
    assert "relay.__version__" in python and "relay.cli" in python
    assert "startswith('/opt/relay/')" in python
    # A stub install of relay is what left a stale build/ behind; nothing installs one now.
    assert not any("touch relay/__init__.py" in run for run in (i.args for i in instructions()))
