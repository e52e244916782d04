"""The retention job: raw household and charger series older than the retention, aggregated.

Raw ``telemetry`` of household meters (kind ``meter``, not a zone's meter) and of chargers,
and the chargers' ``setpoint`` and completed ``stay`` points, are kept for
``privacy.raw_retention_days``; then the telemetry's per-zone 15-minute aggregates
(`gridcoord.privacy.aggregate`) are written and the raw points deleted (setpoints and stays
without an aggregate). PV, wind and zone meters are grid infrastructure, not personal data, and are
left alone.

One implementation for every store, on the `Store` methods ``oldest``, ``series`` and
``replace``. The job goes through windows of at most one day, oldest first, and is:

- *crash-safe*: a window's aggregates and its marker (measurement ``retention``, field
  ``end_s``) are stored before any raw point of it is deleted (the embedded store does both
  in one transaction; InfluxDB first writes, then deletes);
- *resumable and idempotent*: the markers say how far the job got; a window is aggregated
  only once, from its complete raw data. Raw points left behind the marker (a crash during
  the deletions, or data that arrived more than the retention late) are deleted on the next
  run without being aggregated again, so an aggregate is never overwritten from a part.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from adapters.contract.reading import AssetKind
from gridcoord.config import Config
from gridcoord.privacy.aggregate import SLOT_NS, RawSeries, SlotAggregate, Source, aggregate
from gridcoord.storage.base import Deletion, Store
from gridcoord.storage.points import Point, datetime_to_ns, ns_to_datetime

log = logging.getLogger(__name__)

MARKER = "retention"
WINDOW = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GROUP = ("asset_id", "zone")
#: Per-charger series deleted after the retention without an aggregate: (measurement, field).
DELETED_ONLY = (("setpoint", "max_power_w"), ("stay", "stay_h"))


@dataclass
class RetentionReport:
    """What one run did (or, with ``dry_run``, would do).

    Attributes
    ----------
    cutoff
        raw points before this instant are past the retention [UTC].
    windows
        (start, end) of each window aggregated and deleted.
    assets
        household meters and chargers whose raw points were (or would be) deleted.
    aggregates
        aggregate points written.
    late_assets
        assets with raw points behind the last completed window, deleted without aggregating.
    dry_run
        nothing was written or deleted.
    """

    cutoff: datetime
    windows: list[tuple[datetime, datetime]] = field(default_factory=list)
    assets: int = 0
    aggregates: int = 0
    late_assets: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary (RFC 3339 times)."""
        return {
            "cutoff": self.cutoff.isoformat(),
            "windows": [[s.isoformat(), e.isoformat()] for s, e in self.windows],
            "assets": self.assets,
            "aggregates": self.aggregates,
            "late_assets": self.late_assets,
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class _Found:
    asset_id: str
    zone: str
    oldest: datetime
    source: Source


class RetentionJob:
    """Aggregate and delete raw personal series past the retention period.

    Parameters
    ----------
    store
        the store of the deployment.
    config
        the deployment: ``privacy.raw_retention_days`` and which meters are zone meters.
    clock
        returns aware UTC now (tests pass a fake clock instead of waiting 30 days).
    """

    def __init__(self, store: Store, config: Config, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._retention = timedelta(days=config.privacy.raw_retention_days)
        self._zone_meters = {z.meter for z in config.zones if z.meter is not None}
        self._clock = clock

    def cutoff(self) -> datetime:
        """The first instant still within the retention, floored to a quarter hour [UTC]."""
        ns = datetime_to_ns(self._clock() - self._retention)
        return ns_to_datetime(ns - ns % SLOT_NS)

    def run(self, *, dry_run: bool = False, max_windows: int | None = None) -> RetentionReport:
        """Process every window up to the cutoff (or ``max_windows`` of them).

        Raises
        ------
        StoreUnavailable
            the store went away; what was done is kept, the next run goes on from there.
        StoreRejected
            the store cannot serve the job (a server without InfluxQL or a delete API).
        """
        cutoff = self.cutoff()
        report = RetentionReport(cutoff=cutoff, dry_run=dry_run)
        found = self._find(cutoff)
        setpoints = self._deleted_only_series(cutoff)
        done = self._done_until(cutoff)
        deleted: set[str] = set()
        if done is not None:
            late = [f for f in found if f.oldest < done]
            late_setpoints = [a for a, oldest in setpoints.items() if oldest < done]
            if late or late_setpoints:
                ids = sorted({f.asset_id for f in late} | {a for _, a in late_setpoints})
                report.late_assets = len(ids)
                log.info("retention: deleting raw points of %d assets behind %s", len(ids), done)
                if not dry_run:
                    self._store.replace((), _deletions(late, late_setpoints, _EPOCH, done))
                deleted.update(ids)
        if not found and not setpoints:
            return report
        oldest = min([f.oldest for f in found] + list(setpoints.values()))
        start_ns = datetime_to_ns(max(oldest, done or _EPOCH))
        start = ns_to_datetime(start_ns - start_ns % SLOT_NS)
        while start < cutoff and (max_windows is None or len(report.windows) < max_windows):
            end = min(start + WINDOW, cutoff)
            members = [f for f in found if f.oldest < end]
            member_setpoints = [a for a, t in setpoints.items() if t < end]
            aggregates = self._aggregate(members, start, end)
            points = [a.to_point() for a in aggregates]
            points.append(
                Point(MARKER, {}, {"end_s": float(end.timestamp())}, datetime_to_ns(start))
            )
            if not dry_run:
                self._store.replace(points, _deletions(members, member_setpoints, start, end))
            report.windows.append((start, end))
            report.aggregates += len(aggregates)
            deleted.update(f.asset_id for f in members)
            deleted.update(a for _, a in member_setpoints)
            start = end
        report.assets = len(deleted)
        return report

    def _find(self, cutoff: datetime) -> list[_Found]:
        found = []
        for kind, source in (
            (AssetKind.METER, Source.HOUSEHOLD),
            (AssetKind.CHARGER, Source.CHARGING),
        ):
            groups = self._store.oldest(
                "telemetry", "power_w", {"kind": kind.value}, cutoff, _GROUP
            )
            for tags, oldest in groups:
                asset_id = tags["asset_id"]
                if not asset_id or asset_id in self._zone_meters:
                    continue  # zone meters measure the grid, not a household
                found.append(_Found(asset_id, tags["zone"], oldest, source))
        return sorted(found, key=lambda f: (f.source, f.asset_id, f.zone))

    def _deleted_only_series(self, cutoff: datetime) -> dict[tuple[str, str], datetime]:
        """(measurement, asset) → its oldest point, for series deleted without an aggregate."""
        series: dict[tuple[str, str], datetime] = {}
        for measurement, field_name in DELETED_ONLY:
            groups = self._store.oldest(measurement, field_name, {}, cutoff, ("asset_id",))
            for tags, oldest in groups:
                if tags["asset_id"]:
                    series[(measurement, tags["asset_id"])] = oldest
        return series

    def _done_until(self, cutoff: datetime) -> datetime | None:
        markers = self._store.series(MARKER, "end_s", {}, _EPOCH, cutoff + WINDOW)
        if not markers:
            return None
        return datetime.fromtimestamp(max(value for _, value in markers), UTC)

    def _aggregate(
        self, members: Iterable[_Found], start: datetime, end: datetime
    ) -> list[SlotAggregate]:
        raw: dict[Source, list[RawSeries]] = {Source.HOUSEHOLD: [], Source.CHARGING: []}
        for member in members:
            tags = {"asset_id": member.asset_id}
            if member.zone:
                tags["zone"] = member.zone
            power = self._store.series("telemetry", "power_w", tags, start, end)
            connected = (
                self._store.series("telemetry", "connected", tags, start, end)
                if member.source is Source.CHARGING
                else []
            )
            raw[member.source].append(
                RawSeries(
                    member.asset_id,
                    member.zone,
                    [(datetime_to_ns(t), v) for t, v in power],
                    [(datetime_to_ns(t), v) for t, v in connected],
                )
            )
        return aggregate(Source.HOUSEHOLD, raw[Source.HOUSEHOLD]) + aggregate(
            Source.CHARGING, raw[Source.CHARGING]
        )


def _deletions(
    members: Iterable[_Found],
    deleted_only: Iterable[tuple[str, str]],
    start: datetime,
    end: datetime,
) -> list[Deletion]:
    deletions = [
        Deletion("telemetry", {"asset_id": a}, start, end)
        for a in sorted({m.asset_id for m in members})
    ]
    deletions += [
        Deletion(measurement, {"asset_id": a}, start, end)
        for measurement, a in sorted(set(deleted_only))
    ]
    return deletions
