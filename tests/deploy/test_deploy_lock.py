"""requirements.lock, which the Dockerfile installs from, against pyproject.toml."""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.support import REPO_ROOT

LOCK = REPO_ROOT / "requirements.lock"
PIN = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\\n    --hash=sha256:([0-9a-f]{64})$", re.M
)


def runtime_dependencies() -> list[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return [str(dep) for dep in project["dependencies"]]


def pins() -> dict[str, Version]:
    text = LOCK.read_text("utf-8")
    found: dict[str, Version] = {canonicalize_name(m[1]): Version(m[2]) for m in PIN.finditer(text)}
    entries = [line for line in text.splitlines() if line and not line.startswith(("#", " "))]
    assert len(found) == len(entries), "every entry is name==version with one sha256"
    return found


def test_lock_is_made_from_the_current_dependencies() -> None:
    header = re.search(r"^# inputs: ([0-9a-f]{16})$", LOCK.read_text("utf-8"), re.M)
    assert header, "requirements.lock has no inputs line"
    digest = hashlib.sha256("\n".join(runtime_dependencies()).encode()).hexdigest()[:16]
    assert header[1] == digest, "pyproject.toml's dependencies changed: run `make lock`"


def test_lock_pins_every_runtime_dependency_within_its_range() -> None:
    locked = pins()
    for text in runtime_dependencies():
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in requirements.lock"
        assert requirement.specifier.contains(locked[name]), f"{name}=={locked[name]} vs {text}"
        # Extras pull in more packages (uvicorn[standard]: uvloop, httptools, ...); their
        # Linux requirements must be pinned too.
        for extra in requirement.extras:
            for sub in importlib.metadata.requires(requirement.name) or []:
                dep = Requirement(sub)
                env = {"extra": extra, "sys_platform": "linux", "platform_system": "Linux"}
                if dep.marker and dep.marker.evaluate(env) and not dep.marker.evaluate({}):
                    assert canonicalize_name(dep.name) in locked, f"{dep.name} ({text})"


def test_uvicorn_is_capped_below_the_next_minor() -> None:
    # relay/serving/http_guard.py subclasses uvicorn's private HttpToolsProtocol.
    (uvicorn,) = [Requirement(d) for d in runtime_dependencies() if d.startswith("uvicorn")]
    installed = Version(importlib.metadata.version("uvicorn"))
    assert uvicorn.specifier.contains(installed)
    next_minor = Version(f"{installed.major}.{installed.minor + 1}")
    assert not uvicorn.specifier.contains(next_minor)
    assert pins()["uvicorn"] < next_minor
