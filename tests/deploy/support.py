"""Helpers for the deployment tests: the tools they run, chart rendering, PromQL names.

The tools (helm, promql-check, the compose-spec and CRD schemas) are built or fetched by
``deploy/tools/install`` into ``.cache/tools``; a test that needs one and cannot find it
fails with that instruction rather than skipping, so CI cannot pass without them.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.cache import tools_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "deploy" / "helm" / "relay"
TOOLS_DIR = tools_dir()
INSTALL_HINT = f"run make tools (helm, promql-check and schemas into {TOOLS_DIR})"

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest whose
# schemas kubernetes-validate bundles; every manifest is checked against both.
KUBE_VERSIONS = ("1.27.0", "1.37.0")
# Rendering is pure templating, but a cold helm binary on a busy CI machine is slow.
HELM_TIMEOUT_S = 120

Manifest = dict[str, Any]


def find_tool(name: str) -> Path:
    """``<tools cache>/<name>`` if present, else ``<name>`` on PATH; fail (not skip) if neither."""
    cached = TOOLS_DIR / name
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    found = shutil.which(name)
    if found:
        return Path(found)
    pytest.fail(f"{name} not found in {TOOLS_DIR} or on PATH: {INSTALL_HINT}", pytrace=False)


def find_file(name: str) -> Path:
    path = TOOLS_DIR / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: {INSTALL_HINT}", pytrace=False)
    return path


def run_tool(args: Sequence[str | Path], *, timeout: float = HELM_TIMEOUT_S) -> str:
    """Run a tool; on failure, fail the test with its output."""
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(str(a) for a in args)} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return result.stdout


def helm_template(
    helm: Path, values: Mapping[str, Any], *, kube_version: str = KUBE_VERSIONS[-1]
) -> subprocess.CompletedProcess[str]:
    """``helm template`` with ``values`` as a values file; the result is not checked."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(dict(values), handle)
        values_file = handle.name
    try:
        return subprocess.run(
            [
                str(helm),
                "template",
                "relay",
                str(CHART_DIR),
                "--namespace",
                "relay",
                "--kube-version",
                kube_version,
                "--values",
                values_file,
            ],
            capture_output=True,
            text=True,
            timeout=HELM_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    finally:
        os.unlink(values_file)


def render_chart(
    helm: Path, values: Mapping[str, Any], *, kube_version: str = KUBE_VERSIONS[-1]
) -> list[Manifest]:
    result = helm_template(helm, values, kube_version=kube_version)
    if result.returncode != 0:
        pytest.fail(f"helm template failed:\n{result.stderr}", pytrace=False)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(manifests: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [m for m in by_kind(manifests, kind) if name is None or m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


# Grafana's built-in interval variables, replaced by a duration before parsing; other
# $variables sit inside label matcher strings, where PromQL takes them as text.
_GRAFANA_DURATIONS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def promql_check(exprs: Sequence[str]) -> list[dict[str, Any]]:
    """Parse each expression with Prometheus' parser (deploy/tools/promql-check).

    Returns, in order, ``{"expr", "metrics", "error"?}`` with the metric names selected.
    """
    tool = find_tool("promql-check")
    prepared = []
    for expr in exprs:
        for variable, duration in _GRAFANA_DURATIONS.items():
            expr = expr.replace(variable, duration)
        prepared.append(expr)
    result = subprocess.run(
        [str(tool)],
        input=json.dumps(prepared),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"promql-check failed:\n{result.stderr}", pytrace=False)
    parsed: list[dict[str, Any]] = json.loads(result.stdout)
    return parsed


def exported_series_names(families: Iterable[tuple[str, str]]) -> set[str]:
    """Series names Prometheus sees for (family name, type) pairs, as the client exposes them."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
        "gauge": ("",),
        "stateset": ("",),
        "enum": ("",),
        "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
        "unknown": ("",),
    }
    names: set[str] = set()
    for name, kind in families:
        names.update(name + suffix for suffix in suffixes[kind])
    return names


def write_self_signed_pair(directory: Path) -> tuple[str, str]:
    """A throwaway certificate and key, for settings that load the pair they are given."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("relay.example.com")]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "tls.crt"
    key_file = directory / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return str(cert_file), str(key_file)
