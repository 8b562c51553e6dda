"""Adding an option is one declaration plus its docs: every key of relay.toml's schema is
shown in config/relay.toml (set or commented) and named in the README's configuration table."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec.inspect as mi

from relay.settings import Settings
from relay.settings.coerce import unwrap

REPO = Path(__file__).resolve().parents[2]


def schema_keys(node: mi.Type, prefix: str = "") -> list[str]:
    """Dotted keys of the schema; a free-form table or an array of tables is one key."""
    node = unwrap(node)
    if not isinstance(node, mi.StructType):
        return [prefix]
    keys = []
    for field in node.fields:
        keys += schema_keys(field.type, f"{prefix}.{field.encode_name}".lstrip("."))
    return keys


def example_tables() -> dict[str, str]:
    """config/relay.toml's text under each table header, commented headers included."""
    tables: dict[str, str] = {"": ""}
    current = ""
    for line in (REPO / "config" / "relay.toml").read_text().splitlines():
        header = re.match(r"^#?\s*\[\[?([\w.]+)\]\]?\s*$", line)
        if header:
            current = header[1]
            tables.setdefault(current, "")
        else:
            tables[current] += line + "\n"
    return tables


def test_every_key_is_in_the_example_config() -> None:
    tables = example_tables()
    missing = []
    for key in schema_keys(mi.type_info(Settings)):
        if key in tables:  # a free-form table or array of tables: its header shows it
            continue
        table, _, name = key.rpartition(".")
        if not re.search(rf"(^|[\s#]){re.escape(name)}\s*=", tables.get(table, "")):
            missing.append(key)
    assert missing == []


def test_every_key_is_in_the_readme_table() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    first_columns = [row.split("|")[1] for row in section.splitlines() if row.startswith("| `")]
    missing = []
    for key in schema_keys(mi.type_info(Settings)):
        table, _, name = key.rpartition(".")
        named = any(
            f"`{key}" in cell or (f"`{table}." in cell and f"`.{name}`" in cell)
            for cell in first_columns
        )
        if not named:
            missing.append(key)
    assert missing == []
