"""OCPP meter values → contract fields, both versions; anything odd is a MeterValueError."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.ocpp.meter_values import MeterValueError, samples

TS = "2026-12-01T12:00:00Z"


def test_16_strings_with_units_and_phases() -> None:
    [sample] = samples(
        [
            {
                "timestamp": TS,
                "sampled_value": [
                    {"value": "12.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
                    {"value": "3.6", "measurand": "Power.Active.Import", "unit": "kW"},
                    {"value": "15.2", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
                    {"value": "231", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
                    {"value": "80", "measurand": "SoC", "unit": "Percent"},
                    {"value": "-1", "measurand": "Temperature", "unit": "Celsius"},
                ],
            }
        ]
    )
    assert sample.fields == {
        "energy_wh": 12500.0,
        "power_w": 3600.0,
        "current_l2_a": 15.2,
        "voltage_v": 231.0,
        "soc_pct": 80.0,
    }


def test_201_numbers_with_multipliers_and_per_phase_power_summed() -> None:
    [sample] = samples(
        [
            {
                "timestamp": TS,
                "sampled_value": [
                    {
                        "value": 1.5,
                        "measurand": "Energy.Active.Import.Register",
                        "unit_of_measure": {"unit": "kWh", "multiplier": 3},
                    },
                    {"value": 1000, "measurand": "Power.Active.Import", "phase": "L1"},
                    {"value": 1100, "measurand": "Power.Active.Import", "phase": "L2"},
                    {"value": 10, "measurand": "Current.Import"},
                    {"value": 2},  # default measurand: the energy register [Wh]
                ],
            }
        ]
    )
    assert sample.fields == {"energy_wh": 2.0, "power_w": 2100.0, "current_a": 10.0}


@pytest.mark.parametrize(
    "meter_value",
    [
        "x",
        [1],
        [{"timestamp": TS}],
        [{"timestamp": TS, "sampled_value": [{"value": "abc"}]}],
        [{"timestamp": TS, "sampled_value": [{"value": True}]}],
        [{"timestamp": TS, "sampled_value": [{"value": 1, "unit": "furlong"}]}],
        [{"timestamp": TS, "sampled_value": [{"value": 1, "measurand": "SoC", "unit": "W"}]}],
        [{"timestamp": TS, "sampled_value": [{"value": 1, "unit_of_measure": {"multiplier": 99}}]}],
        [{"timestamp": TS, "sampled_value": [{"value": "1e400"}]}],
        [{"timestamp": TS, "sampled_value": [{"value": 1}] * 65}],
        [{"timestamp": TS, "sampled_value": []}] * 33,
    ],
)
def test_junk_is_refused(meter_value: Any) -> None:
    with pytest.raises(MeterValueError):
        samples(meter_value)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
entries = st.fixed_dictionaries(
    {"timestamp": st.just(TS)},
    optional={
        "sampled_value": st.lists(
            st.dictionaries(
                st.sampled_from(["value", "measurand", "phase", "unit", "unit_of_measure"]),
                json_values | st.sampled_from(["Power.Active.Import", "SoC", "L1", "kW", "Wh"]),
            ),
            max_size=5,
        )
    },
)


@given(st.lists(entries, max_size=4) | json_values)
def test_any_json_gives_fields_or_a_meter_value_error(meter_value: Any) -> None:
    try:
        result = samples(meter_value)
    except MeterValueError:
        return
    for sample in result:
        assert all(isinstance(v, float) for v in sample.fields.values())
