"""PlanningLoop driven directly: a fake clock, fake sinks, the real coordinator and optimizer.

No scheduler runs here: `plan_once` and `dispatch_once` are what its jobs call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.contract.reading import AssetKind, Reading
from adapters.modbus.poller import ModbusPoller
from adapters.modbus.setpoints import ModbusSetpointSink
from adapters.mqtt.setpoints import MqttSetpointSink
from adapters.ocpp.server import OcppServer
from adapters.ocpp.settings import OcppServerSettings
from adapters.sink import Delivery, DeliveryState, Setpoint, SetpointSink
from gridcoord.config import Asset, Config
from gridcoord.planning.coordinator import Coordinator
from gridcoord.planning.loop import PlanningLoop
from gridcoord.planning.planner import PROBE
from gridcoord.sinks import setpoint_sinks
from gridcoord.storage.points import Point
from tests.fixtures.waiting import until

T0 = datetime(2026, 11, 24, 17, 0, 20, tzinfo=UTC)
MODBUS = {"host": "127.0.0.1", "port": 1502, "unit_id": 1, "register_map": "generic-charger"}


def city(transformer_kw: float = 40.0) -> Config:
    """One transformer; a contract-topic, an own-topic and a Modbus charger, and a meter."""
    return Config(
        zones=[{"id": "lt-1", "capacity_kw": transformer_kw, "meter": "meter-1"}],
        assets=[
            {"id": "meter-1", "kind": "meter", "zone": "lt-1", "rated_kw": 100.0},
            {"id": "c-mqtt", "kind": "charger", "zone": "lt-1", "rated_kw": 11.0},
            {
                "id": "c-own",
                "kind": "charger",
                "zone": "lt-1",
                "rated_kw": 22.0,
                "mqtt": {"topic": "vendor/own/state", "fields": {"power_w": {"path": "p"}}},
            },
            {
                "id": "c-modbus",
                "kind": "charger",
                "zone": "lt-1",
                "rated_kw": 11.0,
                "modbus": MODBUS,
            },
        ],
        planning={"solver_time_limit_s": 5.0},
    )


CHARGERS = ("c-mqtt", "c-own", "c-modbus")


class FakeClock:
    """The loop's clock; tests move it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeSink:
    """Records what it is sent (into a log shared by all sinks, to see the order)."""

    ids: frozenset[str]
    log: list[Setpoint]
    state: DeliveryState = "read_back"
    raises: bool = False

    @property
    def charger_ids(self) -> frozenset[str]:
        return self.ids

    async def send(self, setpoint: Setpoint) -> Delivery:
        if self.raises:
            raise RuntimeError("sink bug")
        self.log.append(setpoint)
        return Delivery(setpoint.charger_id, self.state, "device said no")


@dataclass
class Rig:
    config: Config
    coordinator: Coordinator
    clock: FakeClock
    sent: list[Setpoint] = field(default_factory=list)
    stored: list[Point] = field(default_factory=list)
    published: list[tuple[str, bytes, int, bool]] = field(default_factory=list)

    def loop(self, sinks: Sequence[SetpointSink]) -> PlanningLoop:
        return PlanningLoop(
            self.config,
            self.coordinator,
            publish=lambda *message: self.published.append(message),
            store=self.stored.extend,
            sinks=sinks,
            clock=self.clock,
        )

    def observe(self, connected: Sequence[str], meter_kw: float = 5.0) -> None:
        now = self.clock.now
        self.coordinator.observe(
            Reading("meter-1", AssetKind.METER, "lt-1", now, {"power_w": meter_kw * 1000.0})
        )
        for charger in CHARGERS:
            fields: dict[str, Any] = {"power_w": 0.0, "connected": charger in connected}
            self.coordinator.observe(Reading(charger, AssetKind.CHARGER, "lt-1", now, fields))


def rig(transformer_kw: float = 40.0) -> Rig:
    config = city(transformer_kw)
    return Rig(config, Coordinator(config), FakeClock(T0))


def by_source(r: Rig, **overrides: Any) -> tuple[FakeSink, FakeSink]:
    mqtt = FakeSink(frozenset({"c-mqtt", "c-own"}), r.sent)
    modbus = FakeSink(frozenset({"c-modbus"}), r.sent, **overrides)
    return mqtt, modbus


def test_every_charger_gets_the_stored_setpoint_once_with_the_clock_s_times() -> None:
    r = rig()
    r.observe(connected=CHARGERS)
    loop = r.loop(by_source(r))
    asyncio.run(loop.dispatch_once())
    outcome = loop.last_dispatch
    assert outcome is not None
    assert sorted(s.charger_id for s in r.sent) == sorted(CHARGERS)
    stored = {p.tags["asset_id"]: p.fields["max_power_w"] for p in r.stored}
    ratings = {a.id: a.rated_kw * 1000.0 for a in r.config.assets}
    for setpoint in r.sent:
        assert setpoint.issued_at == T0
        assert setpoint.valid_until == outcome.valid_until > T0
        assert setpoint.schedule_id == outcome.schedule_id
        assert setpoint.max_power_w == stored[setpoint.charger_id]
        assert 0.0 <= setpoint.max_power_w <= ratings[setpoint.charger_id]
    # The transformer's 40 kW less the 5 kW measured load, shared: never more in sum.
    assert math.fsum(s.max_power_w for s in r.sent) <= 35_000.0 + 1e-6
    assert loop.deliveries == {"read_back": 3}


def test_decreases_are_sent_first_across_sinks() -> None:
    r = rig(transformer_kw=25.0)
    loop = r.loop(by_source(r))
    r.observe(connected=("c-modbus",))
    asyncio.run(loop.dispatch_once())
    first = {s.charger_id: s.max_power_w for s in r.sent}
    assert first["c-modbus"] > 0 and first["c-mqtt"] == 0
    r.sent.clear()
    r.clock.now = T0 + timedelta(minutes=1)
    r.observe(connected=("c-mqtt", "c-own"))
    asyncio.run(loop.dispatch_once())
    order = [s.charger_id for s in r.sent]
    # c-modbus drops to 0 (Modbus sink) before the MQTT chargers rise: the zone never sees
    # the new and the old setpoints at once.
    assert order[0] == "c-modbus" and r.sent[0].max_power_w == 0.0
    assert loop.last_dispatch is not None and order == loop.last_dispatch.order


def test_a_failing_sink_is_reported_once_and_the_others_still_get_theirs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gridcoord.planning.loop")
    r = rig()
    r.observe(connected=CHARGERS)
    loop = r.loop(by_source(r, state="mismatch"))
    for minute in range(3):
        r.clock.now = T0 + timedelta(minutes=minute)
        asyncio.run(loop.dispatch_once())
    warnings = [m.getMessage() for m in caplog.records if m.levelno == logging.WARNING]
    assert warnings == ["setpoint to c-modbus mismatch: device said no"]
    assert loop.deliveries == {"read_back": 6, "mismatch": 3}
    assert len(r.stored) == 9  # every setpoint stored, delivered or not


def test_a_sink_that_raises_is_contained_and_counted_as_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = rig()
    r.observe(connected=CHARGERS)
    mqtt, modbus = by_source(r, raises=True)
    loop = r.loop([modbus, mqtt])
    asyncio.run(loop.dispatch_once())
    assert sorted(s.charger_id for s in r.sent) == ["c-mqtt", "c-own"]
    assert loop.deliveries == {"read_back": 2, "failed": 1}
    assert any("raised: RuntimeError('sink bug')" in m.getMessage() for m in caplog.records)
    modbus.raises = False
    caplog.clear()
    caplog.set_level(logging.INFO, logger="gridcoord.planning.loop")
    asyncio.run(loop.dispatch_once())
    assert [m.getMessage() for m in caplog.records] == [
        "setpoint to c-modbus delivered again (read_back)"
    ]


def test_a_charger_no_sink_serves_is_reported_once_and_still_stored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = rig()
    r.observe(connected=CHARGERS)
    mqtt, _ = by_source(r)
    loop = r.loop([mqtt])
    asyncio.run(loop.dispatch_once())
    asyncio.run(loop.dispatch_once())
    assert sorted(s.charger_id for s in r.sent) == ["c-mqtt", "c-mqtt", "c-own", "c-own"]
    errors = [m.getMessage() for m in caplog.records if m.levelno == logging.ERROR]
    assert errors == ["charger c-modbus: no setpoint sink serves it (is its source running?)"]
    assert loop.deliveries["unreachable"] == 2
    assert {p.tags["asset_id"] for p in r.stored} == set(CHARGERS)


def test_two_sinks_claiming_one_charger_are_refused() -> None:
    r = rig()
    mqtt, modbus = by_source(r)
    greedy = FakeSink(frozenset({"c-modbus", "c-mqtt"}), r.sent)
    with pytest.raises(ValueError, match=r"charger 'c-m(odbus|qtt)' is served by both FakeSink"):
        r.loop([mqtt, modbus, greedy])


def test_a_planning_run_at_the_clock_s_time_is_stored_published_and_dispatched() -> None:
    r = rig()
    r.observe(connected=CHARGERS)
    loop = r.loop(by_source(r))
    asyncio.run(loop.plan_once())
    plan = loop.last_plan
    assert plan is not None and plan.failure is None
    (topic, payload, qos, retain), *_ = r.published
    assert (topic, qos, retain) == ("gridcoord/plan/latest", 1, True)
    assert json.loads(payload)["schedule_id"] == plan.schedule_id
    # The plan's first slot is the next quarter hour; until then the fallback is dispatched.
    assert {s.issued_at for s in r.sent} == {T0}
    assert any(p.measurement != "setpoint" for p in r.stored)
    r.sent.clear()
    r.clock.now = T0.replace(minute=15)
    r.observe(connected=CHARGERS)
    asyncio.run(loop.dispatch_once())
    assert {s.schedule_id for s in r.sent} == {plan.schedule_id}


def test_setpoint_sinks_follow_each_charger_s_configured_source() -> None:
    config = city()
    modbus_assets = [a for a in config.assets if a.modbus is not None]
    poller = ModbusPoller(modbus_assets, lambda reading: None, lambda *rejected: None)
    sinks = setpoint_sinks(config, publish=lambda *message: None, modbus=poller)
    served = {type(s): s.charger_ids for s in sinks}
    assert served == {
        ModbusSetpointSink: frozenset({"c-modbus"}),
        MqttSetpointSink: frozenset({"c-mqtt", "c-own"}),
    }
    # An OCPP station's charger is the central system's, not MQTT's.
    ocpp_city = city().model_copy(
        update={
            "assets": [
                *city().assets,
                Asset(
                    id="c-ocpp", kind=AssetKind.CHARGER, rated_kw=22.0, ocpp={"station_id": "cs-1"}
                ),
            ],
            "ocpp": OcppServerSettings(),
        }
    )
    server = OcppServer(
        OcppServerSettings(), ocpp_city.assets, submit=lambda r: None, reject=lambda *a: None
    )
    mixed = setpoint_sinks(ocpp_city, publish=lambda *message: None, modbus=poller, ocpp=server)
    assert {type(s): s.charger_ids for s in mixed}[OcppServer] == frozenset({"c-ocpp"})
    assert frozenset({"c-mqtt", "c-own"}) in [s.charger_ids for s in mixed]
    # No broker: the MQTT chargers have no sink (the loop reports them), Modbus still works.
    assert [type(s) for s in setpoint_sinks(config, publish=None, modbus=poller)] == [
        ModbusSetpointSink
    ]


def test_the_mqtt_sink_publishes_the_coordinator_s_payload_retained_qos1() -> None:
    r = rig()
    r.observe(connected=CHARGERS)
    sinks = setpoint_sinks(r.config, publish=lambda *m: r.published.append(m), modbus=None)
    loop = r.loop(sinks)
    asyncio.run(loop.dispatch_once())
    outcome = loop.last_dispatch
    assert outcome is not None
    messages = {t: (json.loads(p), q, k) for t, p, q, k in r.published}
    assert messages == {
        f"gridcoord/setpoint/{c}": (outcome.payloads[c], 1, True) for c in ("c-mqtt", "c-own")
    }
    assert loop.deliveries == {"sent": 2, "unreachable": 1}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    transformer_kw=st.floats(0.0, 80.0),
    meter_kw=st.floats(-30.0, 60.0),
    connected=st.sets(st.sampled_from(CHARGERS)),
)
def test_no_setpoint_sent_exceeds_its_charger_or_the_transformer(
    transformer_kw: float, meter_kw: float, connected: set[str]
) -> None:
    r = rig(transformer_kw)
    r.observe(connected=sorted(connected), meter_kw=meter_kw)
    loop = r.loop(by_source(r))
    asyncio.run(loop.dispatch_once())
    ratings = {a.id: a.rated_kw * 1000.0 for a in r.config.assets}
    assert len(r.sent) == 3
    for setpoint in r.sent:
        assert 0.0 <= setpoint.max_power_w <= ratings[setpoint.charger_id] + 1e-6
        if setpoint.charger_id not in connected:
            assert setpoint.max_power_w == 0.0
    outcome = loop.last_dispatch
    if outcome is not None and not outcome.overloads:
        # The meter's net load includes what the chargers draw now (0 here).
        headroom = max(0.0, transformer_kw - meter_kw) * 1000.0
        assert math.fsum(s.max_power_w for s in r.sent) <= headroom + 1e-3


@dataclass
class GatedSink:
    """Holds each charger's send until the test releases it, recording starts and ends."""

    ids: frozenset[str]
    events: list[tuple[str, str]]
    gates: dict[str, asyncio.Event] = field(default_factory=dict)

    @property
    def charger_ids(self) -> frozenset[str]:
        return self.ids

    def gate(self, charger_id: str) -> asyncio.Event:
        return self.gates.setdefault(charger_id, asyncio.Event())

    async def send(self, setpoint: Setpoint) -> Delivery:
        self.events.append(("start", setpoint.charger_id))
        await self.gate(setpoint.charger_id).wait()
        self.events.append(("end", setpoint.charger_id))
        return Delivery(setpoint.charger_id, "read_back")


def test_all_decreases_are_delivered_before_any_increase_and_each_group_goes_at_once() -> None:
    r = rig(transformer_kw=25.0)
    events: list[tuple[str, str]] = []
    sink = GatedSink(frozenset(CHARGERS), events)
    loop = r.loop([sink])

    async def dispatch_twice() -> None:
        r.observe(connected=("c-modbus",))
        for charger in CHARGERS:
            sink.gate(charger).set()
        await loop.dispatch_once()
        events.clear()
        sink.gates.clear()
        r.clock.now = T0 + timedelta(minutes=1)
        r.observe(connected=("c-mqtt", "c-own"))
        task = asyncio.ensure_future(loop.dispatch_once())
        await until(lambda: ("start", "c-modbus") in events)
        for _ in range(20):
            await asyncio.sleep(0)
        assert events == [("start", "c-modbus")]  # the increases wait for the decrease
        sink.gate("c-modbus").set()
        await until(lambda: len(events) == 4)
        # Both increases under way at once, neither finished: one round trip, not two.
        assert sorted(events[2:]) == [("start", "c-mqtt"), ("start", "c-own")]
        sink.gate("c-mqtt").set()
        sink.gate("c-own").set()
        await task

    asyncio.run(dispatch_twice())
    assert events[:2] == [("start", "c-modbus"), ("end", "c-modbus")]


def test_no_zone_alarm_before_the_meters_have_had_time_to_report(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At start every meter is silent: the zone is held at its floors, never a shortfall alarm.

    A silent meter's zone (limit 0) keeps its floors — here the stale charger's 4.2 kW
    minimum — and nothing more: an unknown load is no measured shortage (the zone-limit rule,
    docs/coordination.md); the stale meter is its own alarm in the API.
    """
    config = Config(
        zones=[{"id": "lt-1", "capacity_kw": 40.0, "meter": "meter-1"}],
        assets=[
            {"id": "meter-1", "kind": "meter", "zone": "lt-1", "rated_kw": 100.0},
            {
                "id": "c-home",
                "kind": "charger",
                "zone": "lt-1",
                "rated_kw": 11.0,
                "charger": {"type": "home", "guaranteed_kw": 4.2},
            },
        ],
    )
    r = Rig(config, Coordinator(config), FakeClock(T0))
    loop = r.loop([FakeSink(frozenset({"c-home"}), r.sent)])
    caplog.set_level(logging.INFO, logger="gridcoord.planning.loop")
    asyncio.run(loop.dispatch_once())
    assert loop.last_dispatch is not None and loop.last_dispatch.shortfalls == []
    assert loop.last_dispatch.setpoints_kw == {"c-home": 4.2}  # held at its floor, safely
    r.clock.now = T0 + timedelta(seconds=config.planning.zone_meter_stale_after_s + 1)
    asyncio.run(loop.dispatch_once())
    assert [m for m in caplog.records if m.levelno >= logging.WARNING] == []


# --- events: re-plans on plug-in, plug-out, forecast; debounced ---------------------------


def test_events_re_plan_debounced_and_coalesced_without_the_scheduler() -> None:
    r = rig()
    loop = r.loop(by_source(r))
    r.observe(connected=())
    asyncio.run(loop.plan_once())
    assert loop.event_replans == 0
    # A plug-in (and another one) within the debounce: one pending re-plan, not yet due.
    r.clock.now = T0 + timedelta(seconds=30)
    r.observe(connected=("c-mqtt",))
    r.observe(connected=("c-mqtt", "c-own"))
    assert loop.events["plugged_in"] == 2
    asyncio.run(loop.dispatch_once())
    assert loop.event_replans == 0  # 30 s after the last run: the 120 s debounce holds it
    r.clock.now = T0 + timedelta(seconds=125)
    asyncio.run(loop.dispatch_once())
    assert loop.event_replans == 0  # the debounce is over; the new cars' probe is not
    # Once the first plug-in's probe is over, the next dispatch runs the coalesced re-plan
    # (one), which dispatches too.
    r.clock.now = T0 + timedelta(seconds=30) + PROBE
    asyncio.run(loop.dispatch_once())
    assert loop.event_replans == 1
    assert loop.last_plan is not None and loop.last_plan.made_at == r.clock.now
    assert loop.last_dispatch is not None and loop.last_dispatch.at == r.clock.now
    r.clock.now = T0 + timedelta(seconds=600)
    asyncio.run(loop.dispatch_once())
    assert loop.event_replans == 1  # nothing happened since: no re-plan
    # A plug-out is an event too, re-planned at once (past the debounce, no probe).
    r.observe(connected=("c-own",))
    assert loop.events["unplugged"] == 1
    asyncio.run(loop.dispatch_once())
    assert loop.event_replans == 2


def test_a_plug_in_is_re_planned_after_its_probe_even_past_a_quarter_hour_run() -> None:
    # Issue 12: a plan made while a new car is probed counts on its charger's rating; the
    # re-plan after the probe counts on the limit the car showed.
    r = rig()
    loop = r.loop(by_source(r))
    r.observe(connected=())
    asyncio.run(loop.plan_once())
    r.clock.now = T0 + timedelta(minutes=3)
    r.observe(connected=("c-mqtt",))
    # A run within the probe (a quarter-hour one) does not take the re-plan's place.
    r.clock.now = T0 + timedelta(minutes=4)
    asyncio.run(loop.plan_once())
    assert loop.event_replans == 0
    r.clock.now = T0 + timedelta(minutes=7)
    asyncio.run(loop.dispatch_once())
    assert loop.event_replans == 0  # the debounce after the run is over, the probe is not
    r.clock.now = T0 + timedelta(minutes=3) + PROBE
    asyncio.run(loop.dispatch_once())
    assert loop.event_replans == 1
    r.clock.now = T0 + timedelta(minutes=12)
    asyncio.run(loop.dispatch_once())
    assert loop.event_replans == 1  # asked for once, re-planned once


def test_an_event_re_plan_waits_for_the_boundary_when_no_time_is_left() -> None:
    r = rig()
    loop = r.loop(by_source(r))
    r.observe(connected=("c-mqtt",))
    asyncio.run(loop.plan_once())
    kept = r.coordinator.plans()
    assert kept and kept[-1].slots > 0
    # 14:50 into the slot: no time left to solve before the next one begins; the dispatch
    # goes out and the re-plan waits (a fallback plan would replace nothing anyway).
    r.clock.now = T0.replace(second=0) + timedelta(minutes=14, seconds=50)
    r.observe(connected=("c-mqtt", "c-own"))
    asyncio.run(loop.dispatch_once())
    assert loop.event_replans == 0 and loop.last_dispatch is not None
    assert loop.last_dispatch.at == r.clock.now
    assert r.coordinator.plans() == kept
    r.clock.now = T0.replace(second=0) + timedelta(minutes=15)
    asyncio.run(loop.dispatch_once())
    assert loop.event_replans == 1
    assert loop.last_plan is not None and loop.last_plan.status != "fallback"


def test_a_failed_event_re_plan_keeps_the_plan_there_is() -> None:
    def failing(problem: object, time_limit_s: float) -> object:
        raise RuntimeError("solver down")

    config = city()
    r = Rig(config, Coordinator(config), FakeClock(T0))
    loop = r.loop(by_source(r))
    r.observe(connected=("c-mqtt",))
    asyncio.run(loop.plan_once())
    kept = r.coordinator.plans()
    r.coordinator._planner._solver = failing  # type: ignore[assignment]
    r.clock.now = T0 + timedelta(minutes=3)
    r.observe(connected=("c-mqtt", "c-own"))
    r.clock.now += PROBE  # the re-plan waits for the new car's probe
    asyncio.run(loop.dispatch_once())
    assert loop.event_replans == 1
    assert loop.last_plan is not None and loop.last_plan.status == "fallback"
    assert r.coordinator.plans() == kept


def test_a_shortfall_is_an_alarm_once_per_episode_and_its_rule_is_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = Config(
        zones=[{"id": "lt-1", "capacity_kw": 6.0, "meter": "meter-1"}],
        assets=[
            {"id": "meter-1", "kind": "meter", "zone": "lt-1", "rated_kw": 100.0},
            *(
                {
                    "id": c,
                    "kind": "charger",
                    "zone": "lt-1",
                    "rated_kw": 11.0,
                    "charger": {"type": "home", "guaranteed_kw": 4.2},
                }
                for c in CHARGERS
            ),
        ],
    )
    r = Rig(config, Coordinator(config), FakeClock(T0))
    loop = r.loop([FakeSink(frozenset(CHARGERS), r.sent)])
    with caplog.at_level(logging.ERROR, logger="gridcoord.planning.loop"):
        for minute in range(3):
            r.clock.now = T0 + timedelta(minutes=minute)
            r.observe(connected=("c-mqtt", "c-own"), meter_kw=0.0)
            asyncio.run(loop.dispatch_once())
    outcome = loop.last_dispatch
    assert outcome is not None
    # 8.4 kW of minima in a 6 kW zone: the zone limit wins, every setpoint within it.
    assert math.fsum(outcome.setpoints_kw.values()) <= 6.0
    assert outcome.setpoints_kw["c-modbus"] == 0.0  # no car: no minimum
    assert [o.zone for o in outcome.shortfalls] == ["lt-1"]
    assert outcome.zone_rules["minima_scaled"] == 1
    assert loop.zone_rules["minima_scaled"] == 3
    assert loop.shortfall_episodes["lt-1"] == 1
    alarms = [rec for rec in caplog.records if "grid planning" in rec.getMessage()]
    assert len(alarms) == 1
