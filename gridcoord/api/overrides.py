"""Operator overrides: cap a charger or a zone until a time, through the same safety layer.

An override only ever lowers a limit: a charger's rating, or a zone's EV headroom. Every
dispatch passes its setpoints through `gridcoord.dispatch.apply_limits` once more with the caps
in force, each charger's rating capped at its dispatched setpoint, so an override cannot raise
anything, a §14a guaranteed minimum is still never cut (a cap below it is held at the minimum,
and the clamped result says so; a car the plan left below its minimum keeps what it had) and a
stale charger keeps its safe power. Overrides are kept in a JSON file and reloaded on start; at
expiry the next dispatch simply no longer applies them.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from gridcoord.dispatch import (
    ZoneLimit,
    apply_limits,
    charger_limits,
    setpoint_payload,
)
from gridcoord.timegrid import as_utc

if TYPE_CHECKING:
    from gridcoord.config import Config
    from gridcoord.planning.coordinator import DispatchOutcome

log = logging.getLogger(__name__)

Target = Literal["charger", "zone"]


class Override(BaseModel):
    """One operator cap."""

    model_config = ConfigDict(frozen=True)

    id: int = Field(description="Sequence number, unique within this deployment.")
    target: Target
    target_id: str
    max_kw: float = Field(ge=0, description="The cap [kW].")
    until: datetime = Field(description="When the cap ends [UTC].")
    created_at: datetime
    created_by: str = Field(description="Name of the token that set it.")
    effective_kw: float = Field(
        description="The cap the safety layer can hold (a charger's §14a minimum and rating "
        "bound it) [kW]."
    )


_LIST = TypeAdapter(list[Override])


class OverrideBook:
    """The overrides in force, persisted in ``path``.

    Parameters
    ----------
    config
        the deployment (which chargers and zones exist, their limits).
    path
        JSON file; created on the first override.
    """

    def __init__(self, config: Config, path: Path) -> None:
        self._config = config
        self._path = path
        self._lock = threading.Lock()
        self._chargers = {c.id: c for c in charger_limits(config)}
        self._zone_ids = {z.id for z in config.zones}
        self._items: list[Override] = []
        if path.exists():
            try:
                self._items = _LIST.validate_json(path.read_bytes())
            except ValueError as exc:
                # Unreadable overrides must not stop the service; caps only ever lower limits.
                log.error("overrides file %s unreadable (%s); starting without", path, exc)

    def add(
        self, target: Target, target_id: str, max_kw: float, until: datetime, by: str, now: datetime
    ) -> Override:
        """Record a cap; raises `KeyError` for an unknown target, `ValueError` for a past end."""
        until, now = as_utc(until), as_utc(now)
        if until <= now:
            raise ValueError("`until` must be in the future")
        if target == "charger":
            limit = self._chargers.get(target_id)
            if limit is None:
                raise KeyError(f"unknown charger {target_id!r}")
            effective = min(max(max_kw, min(limit.guaranteed_kw, limit.max_kw)), limit.max_kw)
        else:
            if target_id not in self._zone_ids:
                raise KeyError(f"unknown zone {target_id!r}")
            effective = max_kw
        with self._lock:
            next_id = max((o.id for o in self._items), default=0) + 1
            item = Override(
                id=next_id,
                target=target,
                target_id=target_id,
                max_kw=max_kw,
                until=until,
                created_at=now,
                created_by=by,
                effective_kw=effective,
            )
            self._items.append(item)
            self._save()
        return item

    def remove(self, override_id: int) -> Override | None:
        """Lift a cap before its end; None if there is no such override."""
        with self._lock:
            found = next((o for o in self._items if o.id == override_id), None)
            if found is not None:
                self._items.remove(found)
                self._save()
        return found

    def active(self, now: datetime) -> list[Override]:
        """Overrides in force at ``now``."""
        with self._lock:
            return [o for o in self._items if o.until > now]

    def expire(self, now: datetime) -> list[Override]:
        """Drop and return the overrides that ended by ``now``."""
        with self._lock:
            ended = [o for o in self._items if o.until <= now]
            if ended:
                self._items = [o for o in self._items if o.until > now]
                self._save()
        return ended

    def zone_caps(self, now: datetime) -> dict[str, tuple[float, datetime]]:
        """Zone id → (lowest cap in force [kW], when it ends)."""
        caps: dict[str, tuple[float, datetime]] = {}
        for o in self.active(now):
            if o.target == "zone" and (o.target_id not in caps or o.max_kw < caps[o.target_id][0]):
                caps[o.target_id] = (o.max_kw, o.until)
        return caps

    def charger_caps(self, now: datetime) -> dict[str, float]:
        """Charger id → lowest cap in force [kW]."""
        caps: dict[str, float] = {}
        for o in self.active(now):
            if o.target == "charger":
                caps[o.target_id] = min(o.max_kw, caps.get(o.target_id, o.max_kw))
        return caps

    def apply(self, outcome: DispatchOutcome) -> DispatchOutcome:
        """The dispatch with every cap in force, through the safety layer again."""
        now = outcome.at
        chargers, zones = self.charger_caps(now), self.zone_caps(now)
        if not chargers and not zones:
            return outcome
        # Each charger's rating is capped at what dispatch gave it, so no pass here can raise
        # it (dispatch may leave a car below its minimum where no zone bound: the plan's
        # deferral, `planning.guaranteed_minimum`); its floor is then the lesser of the two.
        limits = [
            replace(
                c,
                max_kw=min(
                    c.max_kw,
                    outcome.setpoints_kw.get(c.id, c.max_kw),
                    max(chargers[c.id], c.guaranteed_kw) if c.id in chargers else math.inf,
                ),
            )
            for c in self._chargers.values()
        ]
        zone_limits = [
            ZoneLimit(z.id, z.parent, zones[z.id][0] if z.id in zones else float("inf"))
            for z in self._config.zones
        ]
        stale = {cid for cid, why in outcome.limited.items() if why == "stale"}
        result = apply_limits(
            outcome.setpoints_kw,
            limits,
            zone_limits,
            stale_chargers=stale,
            connected=outcome.connected,
        )
        setpoints = dict(result.setpoints_kw)
        limited = dict(outcome.limited)
        for cid, kw in setpoints.items():
            if kw < outcome.setpoints_kw.get(cid, kw):
                limited[cid] = "override"
        payloads: dict[str, dict[str, object]] = {
            cid: setpoint_payload(
                kw, now=now, until=outcome.valid_until, schedule_id=outcome.schedule_id
            )
            for cid, kw in setpoints.items()
        }
        return replace(
            outcome,
            setpoints_kw=setpoints,
            payloads=payloads,
            limited=limited,
        )

    def _save(self) -> None:
        """Write the file atomically (called under the lock)."""
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_bytes(_LIST.dump_json(self._items, indent=1))
        os.replace(tmp, self._path)
