"""Charging sessions from charger readings: plug-in/out, energy, need, departure, defaults."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters.contract.reading import AssetKind, FieldValue, Reading
from gridcoord.config import ChargerType
from gridcoord.sessions import (
    EventKind,
    SessionDefault,
    SessionDefaults,
    SessionTracker,
    Source,
)

T0 = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)  # 18:30 in Berlin


def reading(
    charger: str, minutes: float, kind: AssetKind = AssetKind.CHARGER, **fields: FieldValue
) -> Reading:
    return Reading(charger, kind, "zone-1", T0 + timedelta(minutes=minutes), fields)


def tracker(types: Mapping[str, ChargerType] | None = None) -> SessionTracker:
    return SessionTracker(types or {"home-1": ChargerType.HOME, "work-1": ChargerType.WORKPLACE})


def test_plug_in_charge_and_plug_out_with_device_counter() -> None:
    t = tracker()
    events = t.update(reading("home-1", 0, connected=True, session_energy_wh=0.0, power_w=0.0))
    assert [e.kind for e in events] == [EventKind.PLUGGED_IN]
    s = events[0].session
    assert s.id == "home-1@2026-11-24T17:30:00Z"
    assert s.requested_kwh == 15.0 and s.request_source is Source.DEFAULT
    # Home default: next 07:00 Berlin = 06:00 UTC.
    assert s.departure == datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    assert s.departure_source is Source.DEFAULT

    t.update(reading("home-1", 15, connected=True, session_energy_wh=2750.0, power_w=11000.0))
    open_session = t.session("home-1")
    assert open_session is not None
    assert open_session.delivered_kwh == pytest.approx(2.75)
    assert open_session.remaining_kwh == pytest.approx(12.25)
    assert open_session.power_kw == pytest.approx(11.0)

    events = t.update(reading("home-1", 30, connected=False, session_energy_wh=5500.0))
    assert [e.kind for e in events] == [EventKind.UNPLUGGED]
    closed = events[0].session
    assert closed.delivered_kwh == pytest.approx(5.5)
    assert closed.unplugged_at == T0 + timedelta(minutes=30)
    assert not closed.is_open
    assert t.open_sessions() == []


def test_energy_is_integrated_from_power_when_no_counter_is_sent() -> None:
    t = tracker()
    t.update(reading("work-1", 0, connected=True, power_w=11000.0))
    t.update(reading("work-1", 6, power_w=7000.0))  # 11 kW held for 6 minutes
    t.update(reading("work-1", 9, power_w=0.0))  # 7 kW for 3 minutes
    s = t.session("work-1")
    assert s is not None
    assert s.delivered_kwh == pytest.approx(1.1 + 0.35)
    # A gap longer than ten minutes is not bridged: we do not know what happened.
    t.update(reading("work-1", 10, power_w=22000.0))
    t.update(reading("work-1", 40, power_w=0.0))
    s = t.session("work-1")
    assert s is not None
    assert s.delivered_kwh == pytest.approx(1.45)


def test_user_request_and_departure_override_defaults_and_update() -> None:
    t = tracker()
    t.update(
        reading(
            "work-1",
            0,
            connected=True,
            departure="2026-11-24T20:00:00+00:00",
            energy_request_wh=30000.0,
            session_energy_wh=0.0,
        )
    )
    s = t.session("work-1")
    assert s is not None
    assert s.departure == datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    assert s.departure_source is Source.DEVICE
    assert (s.requested_kwh, s.request_source) == (30.0, Source.DEVICE)
    t.update(reading("work-1", 5, energy_request_wh=20000.0, session_energy_wh=1000.0))
    s = t.session("work-1")
    assert s is not None
    assert s.remaining_kwh == pytest.approx(19.0)


def test_unknown_charger_counts_as_public_and_no_personal_fields_are_kept() -> None:
    t = tracker()
    (event,) = t.update(reading("pub-9", 0, connected=True, power_w=0.0))
    assert event.session.departure == T0 + timedelta(hours=2)
    assert "vehicle" not in repr(event.session) and "user" not in repr(event.session)


def test_out_of_order_and_foreign_readings_change_nothing() -> None:
    t = tracker()
    t.update(reading("home-1", 10, connected=True, session_energy_wh=1000.0))
    assert t.update(reading("home-1", 5, connected=False)) == []
    assert t.session("home-1") is not None
    assert t.update(reading("meter-1", 20, kind=AssetKind.METER, power_w=5.0)) == []
    assert t.update(reading("idle-1", 20, power_w=0.0)) == []  # no `connected`: nothing to open
    assert [s.charger_id for s in t.open_sessions()] == ["home-1"]


def test_counter_reset_means_a_plug_out_was_missed() -> None:
    t = tracker()
    t.update(reading("home-1", 0, connected=True, session_energy_wh=0.0))
    t.update(reading("home-1", 60, connected=True, session_energy_wh=9000.0))
    events = t.update(reading("home-1", 90, connected=True, session_energy_wh=200.0))
    assert [e.kind for e in events] == [EventKind.UNPLUGGED, EventKind.PLUGGED_IN]
    assert events[0].session.delivered_kwh == pytest.approx(9.0)
    assert events[1].session.delivered_kwh == pytest.approx(0.2)


def test_tracker_started_mid_session_takes_the_devices_counter() -> None:
    t = tracker()
    (event,) = t.update(reading("home-1", 0, connected=True, session_energy_wh=4000.0))
    assert event.session.delivered_kwh == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("plugged_in", "expected"),
    [
        # Workplace: until 17:00 Berlin, at least 2 h: arrival 08:00 local → 17:00 local.
        (datetime(2026, 11, 24, 7, 0, tzinfo=UTC), datetime(2026, 11, 24, 16, 0, tzinfo=UTC)),
        # Arrival 16:00 local: 17:00 is under 2 h away → 17:00 next day.
        (datetime(2026, 11, 24, 15, 0, tzinfo=UTC), datetime(2026, 11, 25, 16, 0, tzinfo=UTC)),
        # Summer time: 17:00 CEST = 15:00 UTC.
        (datetime(2026, 7, 1, 6, 0, tzinfo=UTC), datetime(2026, 7, 1, 15, 0, tzinfo=UTC)),
    ],
)
def test_workplace_default_departure(plugged_in: datetime, expected: datetime) -> None:
    assert SessionDefaults().departure(ChargerType.WORKPLACE, plugged_in) == expected


def test_home_departure_across_the_autumn_dst_change() -> None:
    # Evening of Sat 24 Oct 2026 (CEST) → Sunday 07:00 CET = 06:00 UTC.
    arrival = datetime(2026, 10, 24, 17, 0, tzinfo=UTC)
    assert SessionDefaults().departure(ChargerType.HOME, arrival) == datetime(
        2026, 10, 25, 6, 0, tzinfo=UTC
    )


def test_defaults_are_validated() -> None:
    with pytest.raises(ValidationError, match="energy_kwh"):
        SessionDefault(energy_kwh=-1.0)
    custom = SessionDefaults(public=SessionDefault(energy_kwh=20.0, dwell_h=1.0))
    assert custom.for_type(ChargerType.PUBLIC).energy_kwh == 20.0
    assert custom.departure(ChargerType.PUBLIC, T0) == T0 + timedelta(hours=1)
    assert custom.home.departure_local == time(7, 0)


@given(
    st.sampled_from(list(ChargerType)),
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
)
@settings(max_examples=200)
def test_default_departure_is_after_plug_in(kind: ChargerType, plugged_in: datetime) -> None:
    departure = SessionDefaults().departure(kind, plugged_in)
    assert departure.tzinfo is not None
    assert plugged_in + timedelta(hours=1) <= departure <= plugged_in + timedelta(hours=48)


steps = st.lists(
    st.tuples(
        st.integers(1, 20),  # minutes since the previous reading
        st.sampled_from([True, False, None]),
        st.one_of(st.none(), st.floats(0, 22000)),  # power_w
        st.one_of(st.none(), st.floats(0, 5000)),  # counter increment [Wh]
    ),
    max_size=40,
)


@given(steps)
@settings(max_examples=150)
def test_sessions_are_consistent_under_any_sequence(
    sequence: list[tuple[int, bool | None, float | None, float | None]],
) -> None:
    t = tracker()
    minute, counter, opened, closed = 0, 0.0, 0, 0
    for gap, connected, power, increment in sequence:
        minute += gap
        fields: dict[str, FieldValue] = {}
        if connected is not None:
            fields["connected"] = connected
        if power is not None:
            fields["power_w"] = power
        if increment is not None:
            counter += increment
            fields["session_energy_wh"] = counter
        if not fields:
            continue
        for event in t.update(reading("home-1", minute, **fields)):
            opened += event.kind is EventKind.PLUGGED_IN
            closed += event.kind is EventKind.UNPLUGGED
            assert event.session.delivered_kwh >= 0
            assert event.session.remaining_kwh >= 0
        if connected is False:
            counter = 0.0
        current = t.session("home-1")
        assert (current is not None) == (opened - closed == 1)
        if current is not None:
            assert current.plugged_in_at <= current.last_seen
            assert current.departure > current.plugged_in_at
    assert 0 <= opened - closed <= 1


def test_a_silent_charger_loses_its_session_and_a_new_one_opens_on_return() -> None:
    t = tracker()
    t.update(reading("home-1", 0, connected=True, session_energy_wh=1000.0))
    assert t.close_silent(T0 + timedelta(hours=11)) == []
    (event,) = t.close_silent(T0 + timedelta(hours=13))
    assert event.kind is EventKind.UNPLUGGED
    assert event.session.unplugged_at == T0
    assert t.open_sessions() == []
    (back,) = t.update(reading("home-1", 14 * 60, connected=True, session_energy_wh=3000.0))
    assert back.kind is EventKind.PLUGGED_IN
