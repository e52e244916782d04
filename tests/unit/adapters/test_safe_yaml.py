"""The bounded YAML reader: plain data reads as PyYAML reads it; anything else is a YamlProblem.

And the loader on top of it: whatever YAML structure a file holds, `load_config` returns a
Config or raises ConfigError, nothing else (issue 9, defect 6).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.safe_yaml import MAX_DEPTH, MAX_NODES, YamlProblem, lines_of, parse
from gridcoord.config import Config, load_config
from gridcoord.config_errors import ConfigError

FIELD_NAMES = [
    "site", "mqtt", "storage", "influxdb", "zones", "assets", "planning", "api", "id", "kind",
    "zone", "parent", "rated_kw", "capacity_kw", "meter", "charger", "modbus", "host", "port",
    "register_map", "unit_id", "topic", "fields", "path", "scale", "password", "token",
    "timezone", "phases", "voltage_v", "guaranteed_kw", "safe_power_kw", "tls", "sessions",
    "home", "energy_kwh", "departure_local", "interval_min", "horizon_h", "<<",
]  # fmt: skip
KINDS = ["pv", "wind", "meter", "charger", "sunspec", "Europe/Berlin", "07:00", "z1", "m1"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**90), max_value=10**90),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(KINDS),
    st.text(max_size=20),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12))
structures = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=40,
)
documents = st.dictionaries(st.sampled_from(FIELD_NAMES[:8]) | keys, structures, max_size=8)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _no_colon_numbers(data: Any) -> bool:
    """PyYAML reads `1:30` as 90 (YAML 1.1); we keep it as text (YAML 1.2)."""
    if isinstance(data, dict):
        return all(_no_colon_numbers(k) and _no_colon_numbers(v) for k, v in data.items())
    if isinstance(data, list):
        return all(_no_colon_numbers(v) for v in data)
    return not (isinstance(data, str) and ":" in data)


@given(documents, st.booleans())
def test_plain_data_reads_as_pyyaml_reads_it(data: dict[str, Any], flow: bool) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
    if "<<" in text or not _no_colon_numbers(data):
        return  # merge keys and base-60 numbers are where we differ on purpose
    assert _same(parse(text), yaml.safe_load(text))


@given(st.text(alphabet="[]{}:,-&*!|>'\"#%@`?\n abc01.~<", max_size=300))
def test_any_text_parses_or_is_a_yaml_problem(text: str) -> None:
    try:
        parse(text)
    except YamlProblem as exc:
        assert str(exc)


@settings(max_examples=60)
@given(st.text(alphabet="[]{}:,-&*!|>'\"#%@?\n abc01.~<", max_size=200))
def test_any_text_as_a_config_file_is_a_config_or_a_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "city.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_config(path)
        except ConfigError as exc:
            assert str(path) in exc.report()


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=12), st.data())
def test_aliases_expand_like_pyyaml_within_the_limit(
    anchors: list[str], data: st.DataObject
) -> None:
    """Random anchor/alias graphs: the same data as PyYAML, or the expansion limit."""
    lines, defined = [], []
    for i, name in enumerate(anchors):
        refs = data.draw(st.lists(st.sampled_from(defined), max_size=9)) if defined else []
        items = ", ".join([f"*{r}" for r in refs] + [str(i)])
        lines.append(f"k{i}: &{name}{i} [{items}]")
        defined.append(f"{name}{i}")
    text = "\n".join(lines) + "\n"
    try:
        ours = parse(text)
    except YamlProblem as exc:
        assert "once aliases are expanded" in str(exc)
        return
    assert ours == yaml.safe_load(text)


def test_merge_keys_follow_the_yaml_merge_rules() -> None:
    text = (
        "base: &base {kind: charger, rated_kw: 11, zone: z1}\n"
        "other: &other {zone: z2, meter: m9}\n"
        "entry:\n  <<: [*base, *other]\n  rated_kw: 22\n"
    )
    assert parse(text)["entry"] == {"kind": "charger", "rated_kw": 22, "zone": "z1", "meter": "m9"}


def test_a_time_of_day_stays_text() -> None:
    assert parse("departure_local: 7:30\n") == {"departure_local": "7:30"}
    assert yaml.safe_load("departure_local: 7:30\n") == {"departure_local": 450}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nested deeper than 32"),
        ("a: [" + ", ".join(["x"] * (MAX_NODES + 1)) + "]", "once aliases are expanded"),
        ("{" + ", ".join(f"k{i}: 1" for i in range(300)) + "}", "more than 256 keys"),
        ("a: !!binary aGVsbG8=", "not supported"),
        ("a: !!set {x}", "not supported"),
        ("a: 2026-13-45", "not a valid timestamp"),
        ("a: 1\n---\nb: 2\n", "one YAML document"),
        ("? [a]\n: 1\n", "key must be text"),
        ("1: a\n", "key must be text"),
        ("a: 1\na: 2\n", "line 2: key 'a' appears twice"),
        ("a: <<\n", "not supported"),
        ("a: *x\n", "unknown alias"),
    ],
)
def test_limits_and_refusals(text: str, expected: str) -> None:
    with pytest.raises(YamlProblem, match=None) as caught:
        parse(text)
    assert expected in str(caught.value)


def test_lines_of_finds_keys_items_and_stops_at_aliases() -> None:
    text = "a: &x [1, 2]\nb: *x\nzones:\n  - {id: z}\n  - id: y\n    n: [1, {k: v}]\n"
    assert lines_of(
        text, [("zones", 1, "n", 1, "k"), ("zones", 0, "id"), ("b", 1), ("zones", 7), ("q",)]
    ) == {("zones", 1, "n", 1, "k"): 6, ("zones", 0, "id"): 4, ("b", 1): 2, ("zones", 7): 3}


config_documents = st.fixed_dictionaries(
    {},
    optional={
        "zones": st.lists(
            st.fixed_dictionaries(
                {"id": scalars | st.sampled_from(["z1", "z2"])},
                optional={"capacity_kw": scalars, "parent": scalars | st.sampled_from(["z1"]),
                          "meter": structures},
            ),
            max_size=4,
        ) | structures,
        "assets": st.lists(
            st.fixed_dictionaries(
                {"id": scalars | st.sampled_from(["m1", "c1"]), "kind": scalars},
                optional={"rated_kw": scalars, "zone": structures, "modbus": structures,
                          "mqtt": structures, "charger": structures},
            ),
            max_size=4,
        ) | structures,
        "mqtt": structures,
        "site": structures,
        "planning": structures,
        "storage": structures,
    },
)  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(config_documents, documents, structures), st.booleans())
def test_the_loader_raises_only_config_errors(data: Any, flow: bool) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "city.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            config = load_config(path)
        except ConfigError as exc:
            report = exc.report()
            assert str(path) in report and len(report.splitlines()) <= 52
        else:
            assert isinstance(config, Config)
