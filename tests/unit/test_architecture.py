"""relay's import graph: no cycles, no upward imports, no oversized modules (in tests/ too).

The layers, lowest first, are the architecture the README's Layout section draws. A module
may import from a lower layer or from its own package, never from a higher layer or a
sibling package of the same layer; that keeps each package replaceable on its own and
makes the direction of every dependency visible in the tree.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "relay"
MAX_MODULE_LINES = 400

# Top-level unit (a module or package directly under relay/) -> its layer.
LAYERS: dict[str, int] = {
    "relay": 0,
    "relay.secrets": 0,
    "relay.deadlines": 0,
    "relay.log_context": 0,
    "relay.credentials": 0,
    "relay.turn_gauges": 0,
    "relay.settings": 1,
    "relay.events": 2,
    "relay.metrics": 3,
    "relay.kafka": 4,
    "relay.intake": 5,
    "relay.spool": 5,
    "relay.control": 5,
    "relay.serving": 6,
    "relay.emulator": 7,
    "relay.consumers": 7,
    "relay.audit": 8,
    "relay.cli": 9,
    "relay.__main__": 10,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """Every relay module ``name`` imports, at any depth of its code (lazy imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # `from relay.events import records` imports the module relay.events.records.
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target in known and target != name:
                yield target


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: set(_imports(name, path, known)) for name, path in modules.items()}


def _unit(module: str) -> str:
    """The top-level unit a module belongs to: relay.kafka.publisher -> relay.kafka."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def test_every_top_level_unit_has_a_layer() -> None:
    units = {_unit(name) for name in _modules()}
    assert units <= set(LAYERS), f"give these a layer: {sorted(units - set(LAYERS))}"


def test_no_import_runs_upward_or_sideways() -> None:
    wrong = []
    for module, targets in _graph().items():
        for target in targets:
            here, there = _unit(module), _unit(target)
            if here == there or LAYERS[there] == 0:
                continue
            if LAYERS[there] >= LAYERS[here]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle() -> None:
    graph = _graph()
    # Tarjan's strongly connected components; any component of two or more is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_size(name: str) -> None:
    lines = len(_modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{name} has {lines} lines; split it by job"


TESTS_DIR = PACKAGE_DIR.parent / "tests"


def _test_modules() -> list[str]:
    return sorted(str(p.relative_to(TESTS_DIR)) for p in TESTS_DIR.rglob("*.py"))


@pytest.mark.parametrize("name", _test_modules())
def test_test_module_size(name: str) -> None:
    lines = len((TESTS_DIR / name).read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"tests/{name} has {lines} lines; split it by subject"
