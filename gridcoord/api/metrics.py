"""Prometheus metrics (prometheus-client), on a registry of the service's own.

Two kinds: instruments the service updates as things happen (store write latency, planning
runs, setpoints sent, read-back mismatches), and values read from the `CityView` at scrape time
(ingest counters, rejections by reason, spool bytes, per-zone headroom, devices stale). A
registry per service keeps several in one process (tests) apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gridcoord.api.view import CityView
    from gridcoord.planning.coordinator import DispatchOutcome, PlanOutcome


class Instruments:
    """The service's own metrics; `observe_*` are called from any thread."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.store_write = Histogram(
            "gridcoord_store_write_seconds",
            "Time of one batch write to the store [s].",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.planning = Histogram(
            "gridcoord_planning_solve_seconds",
            "Wall time of a planning run's solve [s].",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120),
            registry=self.registry,
        )
        self.plan_runs = Counter(
            "gridcoord_planning_runs",
            "Planning runs by status (optimal, time_limit, fallback).",
            ["status"],
            registry=self.registry,
        )
        self.setpoints = Counter(
            "gridcoord_setpoints_sent", "Setpoints sent to chargers.", registry=self.registry
        )
        self.mismatches = Counter(
            "gridcoord_setpoint_readback_mismatches",
            "Modbus setpoints whose write failed or read back differently.",
            registry=self.registry,
        )
        self.api_requests = Counter(
            "gridcoord_api_errors",
            "API requests that ended in an unexpected error (contained, 500).",
            registry=self.registry,
        )

    def observe_plan(self, plan: PlanOutcome) -> None:
        """Count one planning run."""
        self.plan_runs.labels(plan.status).inc()
        self.planning.observe(plan.solve_s)

    def observe_dispatch(self, dispatch: DispatchOutcome, mismatches: int) -> None:
        """Count one dispatch's setpoints and the read-back alarms since the last."""
        self.setpoints.inc(len(dispatch.setpoints_kw))
        if mismatches:
            self.mismatches.inc(mismatches)

    def attach(self, view: CityView) -> None:
        """Also export what ``view`` shows, read at scrape time."""
        self.registry.register(_ViewCollector(view))


class _ViewCollector(Collector):
    def __init__(self, view: CityView) -> None:
        self._view = view

    def collect(self) -> Iterator[Metric]:
        view = self._view
        ingest = CounterMetricFamily(
            "gridcoord_ingest_points",
            "Points through the ingest pipeline, by stage.",
            None,
            ["stage"],
        )
        for stage, value in sorted(view.ingest().items()):
            ingest.add_metric([stage], value)
        yield ingest
        rejected = CounterMetricFamily(
            "gridcoord_readings_rejected", "Rejected readings by reason.", None, ["reason"]
        )
        for reason, value in sorted(view.rejections().items()):
            rejected.add_metric([reason], value)
        yield rejected
        health = view.health()
        yield GaugeMetricFamily(
            "gridcoord_spool_bytes", "Bytes waiting in the disk spool.", value=health.spool_bytes
        )
        yield GaugeMetricFamily(
            "gridcoord_broker_connected",
            "1 while connected and subscribed to the broker.",
            value=float(health.broker_connected),
        )
        yield GaugeMetricFamily(
            "gridcoord_store_writable",
            "1 while writes go to the store (0: spooling).",
            value=float(health.store_writable),
        )
        totals = view.totals()
        yield GaugeMetricFamily(
            "gridcoord_devices_stale", "Assets without a fresh reading.", value=totals.stale
        )
        headroom = GaugeMetricFamily(
            "gridcoord_zone_headroom_kw", "EV headroom per zone now [kW].", labels=["zone"]
        )
        limit = GaugeMetricFamily(
            "gridcoord_zone_limit_kw", "EV limit in force per zone [kW].", labels=["zone"]
        )
        for zone in view.zones():
            headroom.add_metric([zone.id], zone.headroom_kw)
            limit.add_metric([zone.id], zone.limit_kw)
        yield headroom
        yield limit
