"""The optimizer's output (DESIGN 3.5): power per session and charger, KPIs, and what limited it.

The per-slot powers (20,000 sessions × 96 slots: 1.9 M numbers) stay numpy arrays inside a
`Schedule` (`SessionPlans`, `PowerRows`): `solve` hands a schedule back without turning them
into Python floats, and whoever reads them (a mapping lookup, the JSON) pays for it once, after
the solve's deadline. Their JSON and JSON Schema are those of plain dicts of lists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

Status = Literal["optimal", "time_limit", "fallback"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionPlan(_Out):
    """The plan of one session."""

    power_kw: list[float] = Field(description="Charging power per slot [kW].")
    delivered_kwh: float = Field(description="Energy the plan delivers [kWh].")
    unmet_kwh: float = Field(description="Requested energy the plan does not deliver [kWh].")


def session_plan(power_kw: list[float], delivered_kwh: float, unmet_kwh: float) -> SessionPlan:
    """A `SessionPlan` of values we computed ourselves, without validation.

    What `SessionPlan.model_construct` does, minus its generic per-call work (20,000 of them per
    schedule at 20,000 sessions). Checked equal to `model_construct` in tests.
    """
    plan = SessionPlan.__new__(SessionPlan)
    values = {"power_kw": power_kw, "delivered_kwh": delivered_kwh, "unmet_kwh": unmet_kwh}
    object.__setattr__(plan, "__dict__", values)
    object.__setattr__(plan, "__pydantic_fields_set__", set(values))
    object.__setattr__(plan, "__pydantic_extra__", None)
    object.__setattr__(plan, "__pydantic_private__", None)
    return plan


class _ArrayRows:
    """Rows of a read-only [N, T] float array by id; Python lists are made once, on first read.

    The array is kept, not copied (77 MB at 100,000 sessions): whoever passes it in must not
    change it afterwards. Readers get a read-only view.
    """

    def __init__(self, ids: Sequence[str], rows: npt.NDArray[np.float64]) -> None:
        if rows.ndim != 2 or rows.shape[0] != len(ids):
            raise ValueError(f"{len(ids)} ids for {rows.shape[0]} rows")
        self._ids = ids if isinstance(ids, list) else list(ids)
        self._array = np.asarray(rows, dtype=np.float64).view()
        self._array.setflags(write=False)
        self._index: dict[str, int] | None = None
        self._lists: list[list[float]] | None = None

    # What the rows validate and serialise as (the same JSON Schema); set by each subclass.
    _PLAIN: Any

    def __iter__(self) -> Iterator[str]:
        """The ids, in order."""
        return iter(self._ids)

    def __len__(self) -> int:
        """Number of rows."""
        return len(self._ids)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """Validated and serialised as the plain dict `_PLAIN`, whose JSON Schema it keeps."""
        plain = handler.generate_schema(cls._PLAIN)
        return core_schema.no_info_after_validator_function(
            cls._of_dict,
            plain,
            serialization=core_schema.plain_serializer_function_ser_schema(
                dict, return_schema=plain
            ),
        )

    @classmethod
    def _of_dict(cls, value: Any) -> Any:
        """The rows of their plain dict (validated by pydantic already)."""
        raise NotImplementedError

    def _position(self, key: str) -> int:
        if self._index is None:
            self._index = {name: k for k, name in enumerate(self._ids)}
        return self._index[key]

    def _rows(self) -> list[list[float]]:
        if self._lists is None:
            self._lists = self._array.tolist()  # one C loop: ~10× cheaper than row by row
        return self._lists

    @property
    def array(self) -> npt.NDArray[np.float64]:
        """The rows as a read-only [N, T] array, in the order of iteration."""
        return self._array


class PowerRows(_ArrayRows, Mapping[str, list[float]]):
    """Power per id and slot [kW] (`Schedule.chargers`): a read-only mapping id → list."""

    _PLAIN = dict[str, list[float]]

    def __getitem__(self, key: str) -> list[float]:
        """The row of `key` (the same list on every read: do not modify it)."""
        return self._rows()[self._position(key)]

    @classmethod
    def _of_dict(cls, value: dict[str, list[float]]) -> PowerRows:
        width = len(next(iter(value.values()), []))
        if any(len(row) != width for row in value.values()):
            raise ValueError("every row must have the same number of slots")
        return cls(
            list(value), np.array(list(value.values()), dtype=np.float64).reshape(len(value), width)
        )


class SessionPlans(_ArrayRows, Mapping[str, "SessionPlan"]):
    """`Schedule.sessions`: a read-only mapping session id → `SessionPlan`, kept as arrays."""

    _PLAIN = dict[str, SessionPlan]

    def __init__(
        self,
        ids: Sequence[str],
        power_kw: npt.NDArray[np.float64],
        delivered_kwh: npt.NDArray[np.float64],
        unmet_kwh: npt.NDArray[np.float64],
    ) -> None:
        super().__init__(ids, power_kw)
        self._delivered = np.asarray(delivered_kwh, dtype=np.float64).tolist()
        self._unmet = np.asarray(unmet_kwh, dtype=np.float64).tolist()
        if not len(self._delivered) == len(self._unmet) == len(self._ids):
            raise ValueError("one delivered and one unmet energy per session")
        self._plans: list[SessionPlan] | None = None

    def _all(self) -> list[SessionPlan]:
        if self._plans is None:
            self._plans = [
                session_plan(row, delivered, unmet)
                for row, delivered, unmet in zip(
                    self._rows(), self._delivered, self._unmet, strict=True
                )
            ]
        return self._plans

    def __getitem__(self, key: str) -> SessionPlan:
        """The plan of session `key`."""
        return self._all()[self._position(key)]

    @classmethod
    def _of_dict(cls, value: dict[str, SessionPlan]) -> SessionPlans:
        plans = list(value.values())
        width = len(plans[0].power_kw) if plans else 0
        if any(len(p.power_kw) != width for p in plans):
            raise ValueError("every session plan must have the same number of slots")
        power = np.array([p.power_kw for p in plans], dtype=np.float64).reshape(len(plans), width)
        delivered = np.array([p.delivered_kwh for p in plans], dtype=np.float64)
        unmet = np.array([p.unmet_kwh for p in plans], dtype=np.float64)
        return cls(list(value), power, delivered, unmet)


class Kpis(_Out):
    """Figures of merit of one plan; the baselines are scored with the same function."""

    renewable_share: float = Field(
        description="Share of all consumption (base load + EV) covered by renewables [0..1]."
    )
    peak_import_kw: float = Field(description="Largest grid import in any slot [kW].")
    unmet_kwh: float = Field(description="Requested EV energy left undelivered [kWh].")
    delivered_kwh: float = Field(description="EV energy delivered [kWh].")
    import_kwh: float = Field(description="Grid import over the horizon [kWh].")
    import_cost: float = Field(description="Import weighted by import_weight [cost units].")
    peak_ev_kw: float = Field(description="Largest total EV charging power in any slot [kW].")
    zone_overloads: int = Field(description="Zone-slots above capacity (0 for every plan here).")


class Baselines(_Out):
    """KPIs of reference plans for the same problem."""

    uncontrolled: Kpis = Field(description="Every session at its max from arrival, within limits.")
    uncontrolled_ev_kw: list[float] = Field(
        default_factory=list,
        description="EV power of the uncontrolled plan per slot, all sessions [kW] (charts).",
    )
    renewable_surplus_first: Kpis | None = Field(
        None, description="Greedy home-charger heuristic: surplus first, then cheapest slots."
    )


class BindingZone(_Out):
    """A zone at its capacity in some slots."""

    kind: Literal["zone_capacity"] = "zone_capacity"
    zone: str = Field(description="Zone id.")
    slots: list[int] = Field(description="Slots in which the zone is at capacity.")


class BindingCharger(_Out):
    """A charger whose sessions share its full power in some slots."""

    kind: Literal["charger_capacity"] = "charger_capacity"
    charger: str = Field(description="Charger id.")
    slots: list[int] = Field(description="Slots in which the charger is at its max.")


class BindingSession(_Out):
    """A session left short, and why."""

    kind: Literal["session_short"] = "session_short"
    session: str = Field(description="Session id.")
    unmet_kwh: float = Field(description="Energy not delivered [kWh].")
    reason: Literal["window_too_short", "zone_headroom", "charger_shared", "plan_not_optimal"] = (
        Field(
            description="window_too_short: even full power over its whole window is not enough; "
            "zone_headroom / charger_shared: held back by the listed limits; plan_not_optimal: "
            "a time_limit or fallback plan left it short without a limit at capacity."
        )
    )
    limited_by: list[str] = Field(
        default_factory=list, description="Zones or chargers at capacity in the session's window."
    )


Binding = BindingZone | BindingCharger | BindingSession


class Schedule(_Out):
    """A feasible charging plan and its explanation (DESIGN 3.5)."""

    status: Status = Field(description="optimal, time_limit (best feasible found) or fallback.")
    solve_seconds: float = Field(description="Wall time spent in `solve` [s].")
    unmet_kwh_total: float = Field(description="Requested energy not delivered [kWh].")
    import_kwh: float = Field(description="Grid import over the horizon [kWh].")
    import_cost: float = Field(description="Grid import weighted by import_weight.")
    sessions: SessionPlans = Field(description="Plan per session id.")
    chargers: PowerRows = Field(description="Power per charger id and slot [kW].")
    kpis: Kpis = Field(description="Figures of merit of this plan.")
    baseline: Baselines = Field(description="The same figures for reference plans.")
    binding: list[Binding] = Field(description="What limited the plan.")
    message: str | None = Field(None, description="Why the status is not optimal, if it is not.")
