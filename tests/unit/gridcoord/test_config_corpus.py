"""Hostile configurations against the real commands: exit 2, a message, no traceback, bounded.

Each case runs `gridcoord check-config FILE` and `gridcoord run --config FILE` as a subprocess
under a 500 MB address-space limit and a 10 s timeout (issue 9, defect 6). Before the bounded
loader these ended in tracebacks (exit 1), hung (a FIFO, a billion-laughs file, a 5 MB file)
or passed (`rated_kw: .inf`).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

MEMORY_LIMIT = 500 * 1024 * 1024
TIME_LIMIT_S = 60.0  # a hang guard for one command (it answers in seconds)

ASSET = "  - {id: m1, kind: meter, rated_kw: 5}\n"


def _laughs(levels: int = 9) -> str:
    lines = ["zones:", '  - id: &l0 ["x","x","x","x","x","x","x","x","x"]', "    capacity_kw: 1"]
    for n in range(1, levels):
        lines.append(f"  - id: &l{n} [" + ",".join([f"*l{n - 1}"] * 9) + "]")
        lines.append("    capacity_kw: 1")
    return "\n".join(lines) + "\n"


def _aliased_zones(count: int) -> str:
    return "zones:\n  - &z {id: a, capacity_kw: -1}\n" + "  - *z\n" * count


def _five_megabytes() -> str:
    rows = [f"  - {{id: m{i}, kind: meter, rated_kw: 1}}\n" for i in range(130_000)]
    return "assets:\n" + "".join(rows)


# (case id, file text or None for a special file, text expected in the message)
CORPUS: list[tuple[str, str | None, str]] = [
    ("unhashable-parent", "zones:\n  - {id: a, parent: [b], capacity_kw: 1}\n", "zones[0].parent"),
    (
        "unhashable-zone",
        "zones:\n  - {id: z, capacity_kw: 1}\nassets:\n"
        "  - {id: m, kind: meter, rated_kw: 1, zone: {x: 1}}\n",
        "assets[0].zone",
    ),
    (
        "unhashable-modbus-host",
        "assets:\n"
        "  - {id: a, kind: meter, rated_kw: 1, modbus: {host: [1], register_map: sunspec}}\n"
        "  - {id: b, kind: meter, rated_kw: 1, modbus: {host: [1], register_map: sunspec}}\n",
        "assets[0].modbus.host",
    ),
    ("unhashable-key", "zones:\n  - {[1]: 2}\n", "key must be text"),
    ("deep-10000", "site: " + "[" * 10_000 + "\n", "not valid YAML"),
    ("deep-100", "site: " + "[" * 100 + "\n", "nested deeper than 32"),
    ("int-5000-digits", "mqtt:\n  port: " + "1" * 5000 + "\n", "line 2: a number longer"),
    ("float-5000-digits", "assets:\n  - {rated_kw: 1." + "1" * 5000 + "}\n", "a number longer"),
    ("billion-laughs", _laughs(), "once aliases are expanded"),
    ("aliased-zones-100000", _aliased_zones(100_000), "at most 10000 items"),
    ("aliased-zones-9999", _aliased_zones(9_999), "and 19949 more problem(s)"),
    ("five-megabytes", _five_megabytes(), "the limit is 4 MiB"),
    ("rated-inf", "assets:\n  - {id: m, kind: meter, rated_kw: .inf}\n", "assets[0].rated_kw"),
    ("rated-1e308", "assets:\n  - {id: m, kind: meter, rated_kw: 1e308}\n", "assets[0].rated_kw"),
    ("rated-nan", "assets:\n  - {id: m, kind: meter, rated_kw: .nan}\n", "finite number"),
    ("capacity-inf", "zones:\n  - {id: a, capacity_kw: .inf}\n", "zones[0].capacity_kw"),
    (
        "scale-1e308",
        "assets:\n  - {id: m, kind: pv, rated_kw: 1, mqtt: {topic: t, fields: "
        "{power_w: {path: p, scale: 1e308}}}}\n",
        "scale",
    ),
    ("interval-1e308", "mqtt:\n  reconnect_max_s: 1e308\n", "mqtt.reconnect_max_s"),
    (
        "guaranteed-above-rated",
        "assets:\n  - {id: c, kind: charger, rated_kw: 11, charger: {guaranteed_kw: 22}}\n",
        "guaranteed_kw must not exceed rated_kw",
    ),
    (
        "zone-cycle-chain",
        "zones:\n"
        + "".join(
            f"  - {{id: z{i}, parent: z{(i + 1) % 5000}, capacity_kw: 1}}\n" for i in range(5000)
        ),
        "cycle through zone",
    ),
    ("not-utf8", None, "not UTF-8"),
    ("nul-bytes", None, "not valid YAML"),
    ("two-documents", "site: {}\n---\nsite: {}\n", "one YAML document"),
    ("python-tag", "site: !!python/object/apply:os.system [true]\n", "is not supported"),
    ("duplicate-key", "mqtt:\n  port: 1\n  port: 2\n", "appears twice"),
    ("unknown-alias", "zones: *nope\n", "unknown alias *nope"),
    ("top-level-list", "- a\n", "top level must be a mapping"),
    ("fifo", None, "not a regular file (a FIFO)"),
    ("dev-zero", None, "not a regular file (a character device)"),
    ("directory", None, "not a regular file (a directory)"),
    ("missing", None, "cannot read file"),
]

# Environment cases run against a valid file: (case id, variables, text expected).
ENV_CORPUS: list[tuple[str, dict[str, str], str]] = [
    ("env-invalid-json", {"GRIDCOORD_MQTT": "{bad"}, "GRIDCOORD_MQTT: not valid JSON"),
    ("env-deep-json", {"GRIDCOORD_ZONES": "[" * 20_000}, "GRIDCOORD_ZONES: JSON nested too"),
    ("env-big-int", {"GRIDCOORD_MQTT__PORT": "1" * 5000}, "mqtt.port (from GRIDCOORD_MQTT__PORT)"),
    (
        "env-inf",
        {"GRIDCOORD_ASSETS": '[{"id": "a", "kind": "pv", "rated_kw": 1e999}]'},
        "assets[0].rated_kw (from GRIDCOORD_ASSETS)",
    ),
]


def _special(case: str, path: Path) -> Path:
    if case == "not-utf8":
        path.write_bytes(b"site:\n  name: \xff\xfe\n")
    elif case == "nul-bytes":
        path.write_bytes(b"\0" * 4096)
    elif case == "fifo":
        os.mkfifo(path)
    elif case == "dev-zero":
        return Path("/dev/zero")
    elif case == "directory":
        path.mkdir()
    return path


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_bounded(
    *args: str, env: dict[str, str] | None = None, timeout: float = TIME_LIMIT_S
) -> subprocess.CompletedProcess[str]:
    """A `gridcoord` command under the corpus's memory and time limits."""
    return subprocess.run(
        [sys.executable, "-m", "gridcoord", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        preexec_fn=_limits,
    )


def _assert_refused(result: subprocess.CompletedProcess[str], path: Path, expected: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert expected in result.stderr, result.stderr[-2000:]
    assert str(path) in result.stderr
    # Capped: a report is at most 50 problems plus a header and an "and N more" line.
    assert len(result.stderr.splitlines()) <= 52


COMMANDS: list[tuple[str, Callable[[Path], list[str]]]] = [
    ("check-config", lambda path: ["check-config", str(path)]),
    ("run", lambda path: ["run", "--config", str(path)]),
]


@pytest.mark.parametrize(("command", "argv"), COMMANDS, ids=[c for c, _ in COMMANDS])
@pytest.mark.parametrize(("case", "text", "expected"), CORPUS, ids=[c for c, _, _ in CORPUS])
def test_hostile_file_is_refused_with_a_message(
    tmp_path: Path,
    command: str,
    argv: Callable[[Path], list[str]],
    case: str,
    text: str | None,
    expected: str,
) -> None:
    path = tmp_path / f"{case}.yaml"
    if text is None:
        path = _special(case, path)
    else:
        path.write_text(text, encoding="utf-8")
    _assert_refused(run_bounded(*argv(path)), path, expected)


@pytest.mark.parametrize(("command", "argv"), COMMANDS, ids=[c for c, _ in COMMANDS])
@pytest.mark.parametrize(("case", "env", "expected"), ENV_CORPUS, ids=[c for c, _, _ in ENV_CORPUS])
def test_hostile_environment_is_refused_with_a_message(
    tmp_path: Path,
    command: str,
    argv: Callable[[Path], list[str]],
    case: str,
    env: dict[str, str],
    expected: str,
) -> None:
    path = tmp_path / "city.yaml"
    path.write_text("assets:\n" + ASSET, encoding="utf-8")
    _assert_refused(run_bounded(*argv(path), env=env), path, expected)


def test_a_file_near_the_size_limit_loads_within_the_bounds(tmp_path: Path) -> None:
    """The limits refuse hostile files, not a big city: ~4 MB of assets is valid in 500 MB.

    Not a timing test (bench/config_load.py measures that); the timeout only stops a hang.
    """
    path = tmp_path / "big-city.yaml"
    rows = [f"  - {{id: m{i}, kind: meter, rated_kw: 1}}\n" for i in range(95_000)]
    path.write_text("assets:\n" + "".join(rows), encoding="utf-8")
    assert path.stat().st_size < 4 * 1024 * 1024
    result = run_bounded("check-config", str(path), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "95000 assets" in result.stdout
