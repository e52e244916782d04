"""The optimizer's input (DESIGN 3.5): zones, chargers, charging sessions and per-slot series.

Everything the contract says is checked here, so the solver only ever sees a consistent problem.
Cross-reference errors name the element by its id (``session 's-17': unknown charger 'c-9'``);
type and range errors carry pydantic's location (``sessions.3.energy_kwh``), which
`optimizer.errors.describe_problem_errors` turns into the same id-naming form.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

# Limits on every size and magnitude (docs/optimizer.md, "Limits"): a problem outside them is
# refused by validation, before anything is allocated for it. Strict types: `true` is not 1.
MAX_SLOTS = 2016  # a week of 5-minute slots
MAX_SLOT_MINUTES = 1440  # one day
MAX_HORIZON_MINUTES = 31 * 1440  # slots · slot_minutes
MAX_ZONES = 10_000
MAX_CHARGERS = 200_000
MAX_SESSIONS = 500_000
MAX_POWER_KW = 1e7  # 10 GW: any rating, headroom, generation or load
MAX_ENERGY_KWH = 1e6  # 1 GWh per session
MAX_IMPORT_WEIGHT = 1e9
MAX_ID_LENGTH = 200

Power = Annotated[float, Field(ge=0, le=MAX_POWER_KW, strict=True)]
PositivePower = Annotated[float, Field(gt=0, le=MAX_POWER_KW, strict=True)]
Weight = Annotated[float, Field(gt=0, le=MAX_IMPORT_WEIGHT, strict=True)]
SlotIndex = Annotated[int, Field(ge=0, le=MAX_SLOTS, strict=True)]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
# A value that holds in every slot, or one value per slot.
PowerSeries = Power | Annotated[list[Power], Field(max_length=MAX_SLOTS)]
WeightSeries = Weight | Annotated[list[Weight], Field(max_length=MAX_SLOTS)]


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Zone(_Item):
    """EV headroom of a transformer or feeder; its limit covers all chargers of the zones below."""

    id: Id = Field(description="Stable pseudonymous zone id.")
    parent: Id | None = Field(None, description="Id of the enclosing zone; none for a root.")
    capacity_kw: PowerSeries = Field(
        description="EV charging headroom [kW], one value or one per slot."
    )


class Charger(_Item):
    """A charge point; several sessions on one charger share its `max_kw`."""

    id: Id = Field(description="Stable pseudonymous charger id.")
    zone: Id | None = Field(None, description="Id of the zone the charger is connected to.")
    max_kw: PositivePower = Field(description="Charger power limit [kW].")


class Session(_Item):
    """One vehicle's charging request: a window of slots and an energy to deliver."""

    id: Id = Field(description="Stable pseudonymous session id.")
    charger: Id = Field(description="Id of the charger the vehicle is plugged into.")
    arrival_slot: SlotIndex = Field(description="First slot the vehicle can charge in.")
    departure_slot: SlotIndex = Field(description="First slot the vehicle is gone (exclusive).")
    energy_kwh: float = Field(
        ge=0, le=MAX_ENERGY_KWH, strict=True, description="Energy the vehicle asks for [kWh]."
    )
    max_kw: PositivePower | None = Field(None, description="Vehicle power limit [kW], if known.")


class Problem(_Item):
    """A charging problem over `slots` slots of `slot_minutes` each (DESIGN 3.5).

    Slots are the only time axis; `start` is carried along for the caller and never used in the
    solve, so daylight-saving changes cannot affect it.
    """

    slot_minutes: int = Field(
        gt=0, le=MAX_SLOT_MINUTES, strict=True, description="Length of one slot [min]."
    )
    slots: int = Field(gt=0, le=MAX_SLOTS, strict=True, description="Number of slots T.")
    start: AwareDatetime | None = Field(None, description="Start of slot 0 (informational).")
    renewable_kw: PowerSeries = Field(
        0.0, description="Forecast renewable generation available to the city [kW]."
    )
    base_load_kw: PowerSeries = Field(0.0, description="Non-flexible consumption [kW] (default 0).")
    import_weight: WeightSeries = Field(
        1.0, description="Cost of 1 kWh of grid import per slot: price or CO2 (default 1)."
    )
    zones: list[Zone] = Field(
        default_factory=list, max_length=MAX_ZONES, description="Zone tree (forest)."
    )
    chargers: list[Charger] = Field(
        default_factory=list, max_length=MAX_CHARGERS, description="Charge points."
    )
    sessions: list[Session] = Field(
        default_factory=list, max_length=MAX_SESSIONS, description="Charging sessions."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = _cross_check(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def slot_hours(self) -> float:
        """Length of one slot [h]."""
        return self.slot_minutes / 60.0

    def slot_start(self, slot: int) -> datetime | None:
        """Start of `slot` (timezone-aware), if the problem has a `start`."""
        from datetime import timedelta

        if self.start is None:
            return None
        return self.start + timedelta(minutes=self.slot_minutes * slot)


def _series_problem(name: str, value: float | list[float], slots: int) -> str | None:
    if isinstance(value, list) and len(value) != slots:
        return f"{name}: series has {len(value)} values, expected slots = {slots}"
    return None


def _cross_check(problem: Problem) -> list[str]:
    """Every reference, length and ordering problem, each naming its element."""
    slots = problem.slots
    problems: list[str] = []
    horizon = slots * problem.slot_minutes
    if horizon > MAX_HORIZON_MINUTES:
        problems.append(
            f"slots · slot_minutes = {horizon} min exceeds the limit of {MAX_HORIZON_MINUTES} min"
        )
    for name in ("renewable_kw", "base_load_kw", "import_weight"):
        found = _series_problem(name, getattr(problem, name), slots)
        if found:
            problems.append(found)

    zone_ids: set[str] = set()
    for zone in problem.zones:
        if zone.id in zone_ids:
            problems.append(f"zone {zone.id!r}: duplicate zone id")
        zone_ids.add(zone.id)
        found = _series_problem(f"zone {zone.id!r}: capacity_kw", zone.capacity_kw, slots)
        if found:
            problems.append(found)
    parents = {zone.id: zone.parent for zone in problem.zones}
    for zone in problem.zones:
        if zone.parent is not None and zone.parent not in zone_ids:
            problems.append(f"zone {zone.id!r}: unknown parent zone {zone.parent!r}")
    problems += _cycles(parents)

    charger_ids: set[str] = set()
    for charger in problem.chargers:
        if charger.id in charger_ids:
            problems.append(f"charger {charger.id!r}: duplicate charger id")
        charger_ids.add(charger.id)
        if charger.zone is not None and charger.zone not in zone_ids:
            problems.append(f"charger {charger.id!r}: unknown zone {charger.zone!r}")

    session_ids: set[str] = set()
    for session in problem.sessions:
        where = f"session {session.id!r}"
        if session.id in session_ids:
            problems.append(f"{where}: duplicate session id")
        session_ids.add(session.id)
        if session.charger not in charger_ids:
            problems.append(f"{where}: unknown charger {session.charger!r}")
        if session.arrival_slot >= slots:
            problems.append(
                f"{where}: arrival_slot {session.arrival_slot} must be < slots = {slots}"
            )
        if session.departure_slot <= session.arrival_slot:
            problems.append(
                f"{where}: departure_slot {session.departure_slot} must be > "
                f"arrival_slot {session.arrival_slot}"
            )
        if session.departure_slot > slots:
            problems.append(
                f"{where}: departure_slot {session.departure_slot} must be <= slots = {slots}"
            )
    return problems


def _cycles(parents: dict[str, str | None]) -> list[str]:
    """One message per cycle in the zone parent links, naming the zones on it."""
    problems: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: known to reach a root
    for start in parents:
        path: list[str] = []
        node: str | None = start
        while node is not None and node in parents and state.get(node) is None:
            state[node] = 1
            path.append(node)
            node = parents[node]
        if node is not None and state.get(node) == 1:
            cycle = [*path[path.index(node) :], node]
            problems.append("zones: cycle " + " -> ".join(repr(z) for z in cycle))
        for visited in path:
            state[visited] = 2
    return problems
