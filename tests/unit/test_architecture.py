"""The import contracts in pyproject.toml hold, and each one fails on a violating tree."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the three packages and pyproject.toml, to break on purpose."""
    for package in ("gridcoord", "adapters", "optimizer"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")


def test_the_project_keeps_its_import_contracts() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_copy_is_what_is_linted(tree: Path) -> None:
    # Guards the tests below: an unbroken copy passes, so their failures come from the edit.
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("adapters/mqtt/settings.py", "import gridcoord.config", "adapters never import gridcoord"),
        (
            "adapters/modbus/poller.py",
            "from gridcoord.service import Service",
            "adapters never import gridcoord",
        ),
        ("optimizer/lp.py", "import adapters.sink", "optimizer imports nothing of ours"),
        (
            "adapters/contract/reading.py",
            "import adapters.mqtt.settings",
            "the telemetry contract is a leaf of the adapters",
        ),
        # planning imports timegrid; the reverse edge closes a cycle between siblings.
        ("gridcoord/timegrid.py", "import gridcoord.planning.loop", "no cycles between packages"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    tree: Path, module: str, line: str, contract: str
) -> None:
    _append(tree / module, line)
    result = _lint(tree)
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout, result.stdout


GOOGLE_SECTION = re.compile(
    r"^\s*(Args|Arguments|Returns|Raises|Attributes|Yields|Note|Example)s?:\s*$"
)


def test_docstrings_use_numpydoc_sections() -> None:
    # ruff's numpy convention checks the sections it recognises; Google's `Args:` it does not.
    offenders = []
    for package in ("gridcoord", "adapters", "optimizer", "bench", "tests"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(
                    node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
                ):
                    continue
                doc = ast.get_docstring(node, clean=False) or ""
                offenders += [
                    f"{relative}: {line.strip()}"
                    for line in doc.splitlines()
                    if GOOGLE_SECTION.match(line)
                ]
    assert offenders == []
