"""Configuration: the example city is valid, errors name field and file, env overrides win."""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from collections.abc import Iterator
from datetime import time
from pathlib import Path

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from gridcoord.config import Config, load_config
from gridcoord.config_errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "wolfsburg.yaml"


def gridcoord(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridcoord", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_example_city_is_valid_and_city_sized() -> None:
    config = load_config(EXAMPLE)
    kinds = {a.kind.value for a in config.assets}
    assert kinds == {"pv", "wind", "meter", "charger"}
    assert sum(a.kind.value == "charger" for a in config.assets) >= 24
    assert any(z.parent is None for z in config.zones)
    result = gridcoord("check-config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_every_error_reported_with_path_line_and_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "mqtt:\n"
        "  port: 99999\n"
        "  password: s3cret-value\n"
        "zones:\n"
        "  - {id: z1, capacity_kw: -5}\n"
        "  - {id: z2, parent: nope, capacity_kw: 5}\n"
        "assets:\n"
        "  - {id: 'Erika Mustermann', kind: meter, rated_kw: 3}\n"
        "  - {id: c1, kind: charger, zone: z9, rated_kw: 11, colour: red}\n",
        encoding="utf-8",
    )
    result = gridcoord("check-config", str(bad))
    assert result.returncode == 2
    err = result.stderr
    assert "Traceback" not in err
    for expected in (
        "mqtt.port (line 2)",
        "zones[0].capacity_kw (line 5)",
        "zones[1].parent (line 6): unknown zone 'nope'",
        "assets[0].id (line 8)",
        "assets[1].colour (line 9)",
        "assets[1].zone (line 9): unknown zone 'z9'",
    ):
        assert expected in err, expected
    assert str(bad) in err
    # Neither the secret nor the personal name is echoed back.
    assert "s3cret-value" not in err and "Mustermann" not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("zones: [\n", "not valid YAML"),
        ("- just a list\n", "top level must be a mapping"),
        (
            "zones:\n  - {id: a, parent: b, capacity_kw: 1}\n"
            "  - {id: b, parent: a, capacity_kw: 1}\n",
            "cycle",
        ),
        (
            "assets:\n  - {id: a1, kind: pv, rated_kw: 1}\n  - {id: a1, kind: pv, rated_kw: 1}\n",
            "assets[1].id (line 3): duplicate",
        ),
        ("site: {timezone: Mars/Olympus}\n", "unknown IANA time zone"),
        (
            "assets:\n  - {id: m1, kind: meter, rated_kw: 1, charger: {}}\n",
            "only for assets of kind",
        ),
    ],
)
def test_structural_errors(tmp_path: Path, text: str, expected: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert expected in caught.value.report()


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = gridcoord("check-config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "cannot read file" in result.stderr and "Traceback" not in result.stderr


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDCOORD_MQTT__PORT", "1884")
    monkeypatch.setenv("GRIDCOORD_STORAGE__KIND", "influxdb")
    monkeypatch.setenv("GRIDCOORD_INFLUXDB__URL", "http://127.0.0.1:18086")
    monkeypatch.setenv("GRIDCOORD_INFLUXDB__API", "v1")
    monkeypatch.setenv("GRIDCOORD_INFLUXDB__DATABASE", "city")
    monkeypatch.setenv("GRIDCOORD_MQTT__PASSWORD", "from-env")
    config = load_config(EXAMPLE)
    assert config.mqtt.port == 1884
    assert config.storage.kind.value == "influxdb"
    assert config.influxdb.url == "http://127.0.0.1:18086"
    assert config.influxdb.api.value == "v1"
    assert config.influxdb.database == "city"
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "from-env"
    assert "from-env" not in repr(config)
    # The rest still comes from the file.
    assert config.site.name == "wolfsburg-demo"


def test_bad_environment_value_names_the_variable() -> None:
    result = gridcoord("check-config", str(EXAMPLE), env={"GRIDCOORD_MQTT__PORT": "abc"})
    assert result.returncode == 2
    assert "mqtt.port (from GRIDCOORD_MQTT__PORT)" in result.stderr


@pytest.mark.parametrize(
    "url", ["influx.example:8086", "ftp://influx.example", "http://admin:hunter2@influx:8086"]
)
def test_influxdb_url_must_be_plain_http(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("GRIDCOORD_INFLUXDB__URL", url)
    with pytest.raises(ConfigError) as caught:
        load_config(EXAMPLE)
    report = caught.value.report()
    assert "influxdb.url (from GRIDCOORD_INFLUXDB__URL)" in report
    assert "hunter2" not in report


def test_modbus_map_must_fit_the_asset_and_units_are_unique(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    wrong_map = text.replace("register_map: generic-charger", "register_map: sunspec")
    bad = tmp_path / "wrong-map.yaml"
    bad.write_text(wrong_map, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert "modbus.register_map" in caught.value.report()
    assert "not charger" in caught.value.report()
    same_unit = text.replace("port: 15021, unit_id: 1", "port: 15020, unit_id: 1")
    bad.write_text(same_unit, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert "127.0.0.1:15020 unit 1 is already asset 'pv-modbus-01'" in caught.value.report()


def test_own_register_map_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "missing.yaml").write_text("not: a map\n", encoding="utf-8")
    config = tmp_path / "city.yaml"
    config.write_text(
        "assets:\n  - {id: pv-1, kind: pv, rated_kw: 10,\n"
        "     modbus: {host: 127.0.0.1, register_map: maps/missing.yaml}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    # The map was found next to the config (and then refused for its content).
    assert "maps/missing.yaml" in caught.value.report()
    assert "No such file" not in caught.value.report()


def test_hostile_register_map_is_a_config_error_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    hostile = tmp_path / "maps" / "deep.yaml"
    hostile.write_text("name: deep\nregisters: " + "[" * 10_000 + "\n", encoding="utf-8")
    config = tmp_path / "city.yaml"
    config.write_text(
        "assets:\n  - {id: pv-1, kind: pv, rated_kw: 10,\n"
        "     modbus: {host: 127.0.0.1, register_map: maps/deep.yaml}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:  # PyYAML's safe_load: RecursionError
        load_config(config)
    report = caught.value.report()
    assert "assets[0].modbus.register_map" in report
    assert f"register map '{hostile}': line 2, column" in report


def _numeric_fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    for name, info in model.model_fields.items():
        annotation = info.annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
        for arg in args:
            inner = typing.get_args(arg)
            for candidate in [arg, *inner]:
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    yield from _numeric_fields(candidate, f"{prefix}{name}.")
            if arg in (int, float):
                yield f"{prefix}{name}", info


def test_every_number_in_the_schema_has_finite_bounds() -> None:
    """A rating, capacity or interval without an upper bound let `1e308` through (issue 9)."""
    fields = dict(_numeric_fields(Config))
    assert "assets.rated_kw" in fields and "zones.capacity_kw" in fields
    assert "assets.modbus.poll_interval_s" in fields
    unbounded = []
    for name, info in fields.items():
        kinds = {type(m).__name__ for m in info.metadata}
        if not ({"Ge", "Gt"} & kinds and {"Le", "Lt"} & kinds):
            unbounded.append(name)
    assert unbounded == []


def test_a_thousand_broken_entries_give_a_short_report(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    rows = "".join(f"  - {{id: z{i}, capacity_kw: -1}}\n" for i in range(1000))
    bad.write_text("zones:\n" + rows, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    lines = caught.value.report().splitlines()
    assert lines[0].endswith("invalid configuration (1000 problem(s))")
    assert len(lines) == 52
    assert lines[1].endswith(
        "zones[0].capacity_kw (line 2): Input should be greater than or equal to 0"
    )
    assert lines[-1].endswith("and 950 more problem(s)")


def test_a_key_cannot_forge_a_report_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('planning: {"x\\n  bad.yaml: all fine": 1}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    report = caught.value.report()
    assert len(report.splitlines()) == 2
    assert "planning['x\\n  bad.yaml: all fine'] (line 1): Extra inputs" in report


def test_a_departure_written_as_a_plain_time_is_that_time(tmp_path: Path) -> None:
    """YAML 1.1 reads `17:30` as the number 1050 (then 00:17:30); we read it as 17:30."""
    city = tmp_path / "city.yaml"
    city.write_text(
        "planning:\n  sessions:\n    workplace: {energy_kwh: 10, departure_local: 17:30}\n",
        encoding="utf-8",
    )
    assert load_config(city).planning.sessions.workplace.departure_local == time(17, 30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mqtt: {reconnect_min_s: 60, reconnect_max_s: 5}\n", "must not exceed reconnect_max_s"),
        (
            "assets:\n  - {id: c1, kind: charger, rated_kw: 11, charger: {safe_power_kw: 50}}\n",
            "assets[0] (line 2): Value error, charger.safe_power_kw must not exceed rated_kw",
        ),
        (
            "assets:\n  - {id: p1, kind: pv, rated_kw: 1, mqtt: {topic: t, fields: "
            "{power_w: {path: p, scale: 0}}}}\n",
            "must not be 0",
        ),
        ("storage: {spool_max_bytes: 1e300}\n", "storage.spool_max_bytes (line 1)"),
    ],
)
def test_cross_field_bounds(tmp_path: Path, text: str, expected: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert expected.replace("Value error, ", "") in caught.value.report()
