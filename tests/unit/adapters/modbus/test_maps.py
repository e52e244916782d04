"""Register maps: every shipped map loads, and a broken map is refused naming what is wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.modbus.maps import MapError, builtin_map_names, load_map, parse_map
from adapters.modbus.source import ModbusSource


def test_shipped_maps() -> None:
    names = builtin_map_names()
    assert {"sunspec", "generic-charger", "keba-p30", "alfen-ng9xx"} <= set(names)
    for name in names:
        register_map = load_map(name)
        assert register_map.name == name
        assert register_map.source, f"{name}: say which documentation it was written from"


def test_charger_maps_have_the_controls_the_issue_asks_for() -> None:
    for name in ("generic-charger", "keba-p30", "alfen-ng9xx"):
        charger = load_map(name).charger
        assert charger is not None
        assert charger.setpoint.write
        assert charger.failsafe_current is not None
        assert charger.failsafe_timeout is not None or charger.fixed_failsafe_timeout_s


MINIMAL = """
name: test-meter
description: a test
source: none
kinds: [meter]
registers:
  - {name: power, address: 0, type: s32, unit: W, field: power_w}
"""


def test_minimal_map_parses() -> None:
    register_map = parse_map(MINIMAL, label="t")
    assert register_map.register("power").count == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("unit: W", "unit: kW"), "registers[0] (power): feeds power_w in W, but its unit is kW"),
        (("type: s32", "type: s64"), "registers[0] (power).type"),
        (("address: 0", "address: 70000"), "registers[0] (power).address"),
        (("kinds: [meter]", "kinds: [toaster]"), "kinds[0]"),
        (("field: power_w", "field: power_w, scale_register: nope"), "no sunssf register 'nope'"),
    ],
)
def test_broken_map_names_the_element(change: tuple[str, str], message: str) -> None:
    with pytest.raises(MapError) as error:
        parse_map(MINIMAL.replace(*change), label="broken")
    assert "register map 'broken'" in str(error.value)
    assert message in str(error.value)


def test_overlapping_registers_are_refused() -> None:
    text = MINIMAL + "  - {name: other, address: 1, type: u16}\n"
    with pytest.raises(MapError, match="'other' overlaps 'power'"):
        parse_map(text, label="t")


def test_not_yaml_and_unknown_names() -> None:
    with pytest.raises(MapError, match="line 2, column 1: not valid YAML"):
        parse_map("registers: [\n", label="t")
    with pytest.raises(MapError, match="no such built-in map"):
        load_map("no-such-charger")


def test_map_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "meter.yaml"
    path.write_text(MINIMAL)
    assert load_map(str(path)).name == "test-meter"
    with pytest.raises(MapError, match="cannot read"):
        load_map(str(tmp_path / "missing.yaml"))


def test_config_names_an_unknown_builtin_map() -> None:
    with pytest.raises(ValidationError, match="no such built-in map"):
        ModbusSource(host="127.0.0.1", register_map="sunspek")


def test_source_problems_for_an_asset_kind() -> None:
    charger = ModbusSource(host="127.0.0.1", register_map="keba-p30")
    assert charger.problems_for("charger") == []
    assert charger.problems_for("pv") == ["register map 'keba-p30' is for charger, not pv"]
    assert ModbusSource(host="h", register_map="sunspec").problems_for("meter") == []
    missing = ModbusSource(host="h", register_map="/nowhere/map.yaml")
    assert "cannot read" in missing.problems_for("pv")[0]


# Hostile register maps: each is refused with a MapError naming the file and the line, fast
# and in little memory (PyYAML's safe_load recursed into a RecursionError on deep nesting and
# read a file of any size whole).
_LAUGHS = "".join(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]\n" for n in range(1, 10))
HOSTILE_MAPS = {
    "alias bomb": (
        MINIMAL.replace("registers:", "x0: &l0 [lol]\n" + _LAUGHS + "registers:"),
        "line 12: more than 1,000,000 values once aliases are expanded",
    ),
    # libyaml stops at 1,000 levels itself, naming the line; 40 levels reach our own limit.
    "deep nesting": (MINIMAL + "extra: " + "[" * 10_000 + "\n", "line 8, column"),
    "nesting": (MINIMAL + "extra: " + "[" * 40 + "]" * 40 + "\n", "line 8: nested deeper than 32"),
    "list as a key": (MINIMAL + "? [a]\n: 1\n", "line 8: a mapping key must be text or an"),
    "python tag": (MINIMAL + "extra: !!python/object/apply:os.system [id]\n", "line 8: tag"),
    "duplicate key": (MINIMAL + "name: twice\n", "line 8: key 'name' appears twice"),
    "huge file": (MINIMAL + "# " + "x" * (2 * 1024 * 1024) + "\n", "the limit is 1 MiB"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_MAPS))
def test_hostile_map_file_is_refused_naming_file_and_line(tmp_path: Path, case: str) -> None:
    text, expected = HOSTILE_MAPS[case]
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MapError) as error:
        load_map(str(path))
    assert f"register map '{path}'" in str(error.value)
    assert expected in str(error.value)


def test_hostile_map_text_is_refused() -> None:
    text, expected = HOSTILE_MAPS["alias bomb"]
    with pytest.raises(MapError, match=expected):
        parse_map(text, label="bomb")
    with pytest.raises(MapError, match="characters; the limit is"):
        parse_map(HOSTILE_MAPS["huge file"][0], label="huge")


def test_a_special_file_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(MapError, match="not a regular file"):
        load_map(str(fifo))
