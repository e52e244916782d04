"""The docs stand on their own and the generated references match the code."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from adapters.contract.validation import Reason

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", "var", "build", "dist", "node_modules", "gridcoord.egg-info"}
OUTSIDE = ("../" + "shared", "/work/" + "shared")  # split, so this file does not match


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_docs_are_up_to_date() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, content in generator().rendered().items()
        if not path.exists() or path.read_text(encoding="utf-8") != content
    ]
    assert stale == [], f"stale: {stale}; run .venv/bin/python scripts/gen_docs.py"


def test_every_configuration_field_says_what_it_is_for() -> None:
    schema: dict[str, Any] = generator().json_schemas()["config"]
    missing = [
        f"{name}.{field}"
        for name, model in [("Config", schema), *schema["$defs"].items()]
        for field, spec in model.get("properties", {}).items()
        if not spec.get("description")
    ]
    assert missing == []


def test_the_configuration_page_lists_every_leaf_setting() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for path in (
        "mqtt.tls.ca_file",
        "assets[].modbus.failsafe_timeout_s",
        "assets[].mqtt.fields.<name>.scale",
        "planning.sessions.home.energy_kwh",
    ):
        assert f"| `{path}` |" in page, path  # fmt: skip


def test_every_rejection_reason_is_documented() -> None:
    page = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", page, flags=re.MULTILINE))
    assert {r.value for r in Reason} <= documented


def test_nothing_points_outside_the_repository() -> None:
    # A clone has only the repository: what users need is in docs/.
    offenders = []
    for path in ROOT.rglob("*"):
        if any(part in SKIP_DIRS or part.startswith(".") for part in path.relative_to(ROOT).parts):
            continue
        if path.is_file() and path.suffix in {".py", ".md", ".yaml", ".yml", ".toml", ".sh", ""}:
            text = path.read_text(encoding="utf-8", errors="replace")
            if any(needle in text for needle in OUTSIDE):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_licence_pyproject_names_is_there() -> None:
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")


def test_the_open_data_columns_are_documented_as_the_export_writes_them() -> None:
    """docs/data-protection.md is the files' contract: each table row is a column, in order."""
    from gridcoord.open_data.tables import CHARGE_POINT_COLUMNS, STATUS_COLUMNS, ZONE_COLUMNS

    text = (ROOT / "docs" / "data-protection.md").read_text(encoding="utf-8")
    tables: list[list[tuple[str, str, str]]] = []
    current: list[tuple[str, str, str]] = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 3:
            name, unit, meaning = cells
            current.append((name.strip("`"), unit, meaning.replace("`", "'")))
        elif current:
            tables.append(current)
            current = []
    for columns in (ZONE_COLUMNS, CHARGE_POINT_COLUMNS, STATUS_COLUMNS):
        wanted = [(c.name, c.unit, c.description) for c in columns]
        assert wanted in tables, f"docs/data-protection.md lacks the table {wanted}"
