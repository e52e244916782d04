"""Operator overrides pass the safety layer: they only lower, never cut a §14a minimum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcoord.api.overrides import OverrideBook
from gridcoord.config import Config
from gridcoord.planning.coordinator import DispatchOutcome

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def config() -> Config:
    return Config.model_validate(
        {
            "zones": [
                {"id": "sub", "capacity_kw": 100},
                {"id": "lt-a", "parent": "sub", "capacity_kw": 40},
            ],
            "assets": [
                {"id": "c1", "kind": "charger", "zone": "lt-a", "rated_kw": 11},
                {
                    "id": "c2",
                    "kind": "charger",
                    "zone": "lt-a",
                    "rated_kw": 11,
                    "charger": {"guaranteed_kw": 4.2},
                },
                {"id": "c3", "kind": "charger", "zone": "sub", "rated_kw": 22},
            ],
        }
    )


def outcome(setpoints: dict[str, float], limited: dict[str, str] | None = None) -> DispatchOutcome:
    return DispatchOutcome(
        schedule_id="s1",
        at=NOW,
        valid_until=NOW + timedelta(minutes=3),
        setpoints_kw=setpoints,
        payloads={},
        order=sorted(setpoints),
        shortfalls=[],
        limited=limited or dict.fromkeys(setpoints, "plan"),
        connected=frozenset(setpoints),
    )


def test_charger_cap_lowers_and_is_sent_in_the_payload(tmp_path: Path) -> None:
    book = OverrideBook(config(), tmp_path / "o.json")
    book.add("charger", "c1", 2.0, NOW + timedelta(hours=1), "op", NOW)
    result = book.apply(outcome({"c1": 11.0, "c2": 11.0, "c3": 5.0}))
    assert result.setpoints_kw == {"c1": 2.0, "c2": 11.0, "c3": 5.0}
    assert result.limited["c1"] == "override"
    assert result.payloads["c1"]["max_power_w"] == 2000.0
    assert result.payloads["c1"]["valid_until"] == "2026-06-01T12:03:00Z"


def test_cap_below_the_guaranteed_minimum_holds_the_minimum(tmp_path: Path) -> None:
    book = OverrideBook(config(), tmp_path / "o.json")
    item = book.add("charger", "c2", 0.0, NOW + timedelta(hours=1), "op", NOW)
    assert item.effective_kw == pytest.approx(4.2)
    assert book.apply(outcome({"c1": 0.0, "c2": 11.0, "c3": 0.0})).setpoints_kw["c2"] == 4.2


def test_zone_cap_scales_the_zone_and_spares_others(tmp_path: Path) -> None:
    book = OverrideBook(config(), tmp_path / "o.json")
    book.add("zone", "lt-a", 8.2, NOW + timedelta(hours=1), "op", NOW)
    result = book.apply(outcome({"c1": 11.0, "c2": 11.0, "c3": 22.0}))
    assert result.setpoints_kw["c1"] + result.setpoints_kw["c2"] == pytest.approx(8.2)
    assert result.setpoints_kw["c2"] >= 4.2
    assert result.setpoints_kw["c3"] == 22.0


def test_expired_overrides_no_longer_apply_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    book = OverrideBook(config(), path)
    book.add("charger", "c1", 1.0, NOW + timedelta(minutes=5), "op", NOW)
    book.add("zone", "sub", 1.0, NOW + timedelta(hours=5), "op", NOW)
    again = OverrideBook(config(), path)
    assert [o.target_id for o in again.active(NOW)] == ["c1", "sub"]
    later = NOW + timedelta(minutes=6)
    assert [o.target_id for o in again.expire(later)] == ["c1"]
    assert [o.target_id for o in OverrideBook(config(), path).active(later)] == ["sub"]


def test_unknown_targets_and_past_ends_are_refused(tmp_path: Path) -> None:
    book = OverrideBook(config(), tmp_path / "o.json")
    with pytest.raises(KeyError):
        book.add("charger", "nope", 1.0, NOW + timedelta(hours=1), "op", NOW)
    with pytest.raises(KeyError):
        book.add("zone", "nope", 1.0, NOW + timedelta(hours=1), "op", NOW)
    with pytest.raises(ValueError):
        book.add("zone", "sub", 1.0, NOW, "op", NOW)


def test_an_unreadable_file_starts_without_overrides(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    path.write_text("{broken")
    assert OverrideBook(config(), path).active(NOW) == []


powers = st.floats(min_value=0, max_value=30, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    c1=powers,
    c2=powers,
    c3=powers,
    cap_c1=st.none() | powers,
    cap_zone=st.none() | powers,
    cap_sub=st.none() | powers,
)
def test_overrides_never_raise_a_setpoint_and_hold_every_cap(
    tmp_path_factory: pytest.TempPathFactory,
    c1: float,
    c2: float,
    c3: float,
    cap_c1: float | None,
    cap_zone: float | None,
    cap_sub: float | None,
) -> None:
    book = OverrideBook(config(), tmp_path_factory.mktemp("o") / "o.json")
    until = NOW + timedelta(hours=1)
    if cap_c1 is not None:
        book.add("charger", "c1", cap_c1, until, "op", NOW)
    if cap_zone is not None:
        book.add("zone", "lt-a", cap_zone, until, "op", NOW)
    if cap_sub is not None:
        book.add("zone", "sub", cap_sub, until, "op", NOW)
    # What the coordinator sends is within every limit; c2 may be below its minimum (a plan
    # that defers it where its zones do not bind, `planning.guaranteed_minimum`).
    before = {"c1": min(c1, 11.0), "c2": min(c2, 11.0), "c3": min(c3, 22.0)}
    after = book.apply(outcome(before)).setpoints_kw
    eps = 1e-9
    for charger, kw in after.items():
        assert kw <= before[charger] + eps
    # No cap cuts c2 below its minimum (or below what it had, if less) wherever that fits; a
    # zone cap below it wins (the safety layer's rule).
    if all(cap is None or cap >= 4.2 for cap in (cap_zone, cap_sub)):
        assert after["c2"] >= min(4.2, before["c2"]) - eps
    if cap_c1 is not None:
        assert after["c1"] <= cap_c1 + eps
    if cap_zone is not None:
        assert after["c1"] + after["c2"] <= cap_zone + eps
    if cap_sub is not None:
        assert sum(after.values()) <= cap_sub + eps
