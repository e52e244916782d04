"""The InfluxDB 1.x store against a real influxd 1.6: round trips, refusals, outages, auth."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.contract.reading import AssetKind, Reading
from gridcoord.storage.base import StoreRejected, StoreUnavailable
from gridcoord.storage.influx_v1 import InfluxV1Store
from gridcoord.storage.points import Point, datetime_to_ns, reading_to_point
from gridcoord.storage.spool import Spool
from tests.fixtures.influx import InfluxdServer

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _telemetry(count: int, start: int = 0, asset: str = "pv-1") -> list[Point]:
    t0 = datetime_to_ns(T0)
    return [
        Point(
            "telemetry",
            {"asset_id": asset, "kind": "pv", "zone": "z-1"},
            {"power_w": float(i), "energy_wh": 10.0 * i},
            t0 + i * 1_000_000_000,
        )
        for i in range(start, start + count)
    ]


@pytest.fixture
def store(influxd_server: InfluxdServer, influx_database: str) -> Iterator[InfluxV1Store]:
    store = InfluxV1Store(influxd_server.url, influx_database, timeout_s=5)
    yield store
    store.close()


def test_write_creates_the_database_and_reads_back(
    store: InfluxV1Store, influxd_server: InfluxdServer, influx_database: str
) -> None:
    store.write(_telemetry(100))
    assert influxd_server.count("telemetry", "power_w", influx_database) == 100
    values = store.series(
        "telemetry", "power_w", {"asset_id": "pv-1"}, T0, T0 + timedelta(seconds=10)
    )
    assert values == [(T0 + timedelta(seconds=i), float(i)) for i in range(10)]
    # A second store on the same database: CREATE DATABASE is idempotent.
    again = InfluxV1Store(influxd_server.url, influx_database)
    again.write(_telemetry(5, start=100))
    again.close()
    assert influxd_server.count("telemetry", "power_w", influx_database) == 105


def test_escaped_tags_and_string_fields_survive(
    store: InfluxV1Store, influxd_server: InfluxdServer, influx_database: str
) -> None:
    tricky = "a b,c=d \"q\" 's'"
    point = Point(
        "plan",
        {"schedule_id": tricky},
        {"status": 'time "limit", then = fallback', "solve_s": 1.5},
        datetime_to_ns(T0),
    )
    store.write([point])
    rows = influxd_server.rows('SELECT * FROM "plan"', influx_database)
    assert rows == [
        {
            "time": datetime_to_ns(T0),
            "schedule_id": tricky,
            "status": 'time "limit", then = fallback',
            "solve_s": 1.5,
        }
    ]
    end = T0 + timedelta(seconds=1)
    assert store.series("plan", "solve_s", {"schedule_id": tricky}, T0, end) == [(T0, 1.5)]
    assert store.series("plan", "solve_s", {"schedule_id": "other"}, T0, end) == []


def test_one_conflicting_point_does_not_cost_the_others(
    store: InfluxV1Store, influxd_server: InfluxdServer, influx_database: str
) -> None:
    store.write([Point("plan", {"schedule_id": "s1"}, {"status": "optimal"}, 1)])
    batch = _telemetry(50)
    bad = Point("plan", {"schedule_id": "s2"}, {"status": 3.0}, 2)  # float where text is stored
    with pytest.raises(StoreRejected, match=r"refused 1 of 51 points") as caught:
        store.write([*batch[:20], bad, *batch[20:]])
    assert caught.value.rejected == [bad]
    assert influxd_server.count("telemetry", "power_w", influx_database) == 50


def test_point_line_protocol_cannot_carry_is_refused_alone(
    store: InfluxV1Store, influxd_server: InfluxdServer, influx_database: str
) -> None:
    bad = Point("telemetry", {"asset_id": "line\nbreak"}, {"power_w": 1.0}, 5)
    with pytest.raises(StoreRejected) as caught:
        store.write([*_telemetry(3), bad])
    assert caught.value.rejected == [bad]
    assert influxd_server.count("telemetry", "power_w", influx_database) == 3


def test_stopped_server_is_unavailable_then_writes_resume(
    influxd_factory: Callable[..., InfluxdServer],
) -> None:
    server = influxd_factory()
    store = InfluxV1Store(server.url, "outage", timeout_s=2)
    store.write(_telemetry(10))
    server.stop()
    with pytest.raises(StoreUnavailable, match="unreachable: connection refused"):
        store.write(_telemetry(10, start=10))
    server.start()
    store.write(_telemetry(10, start=10))
    assert server.count("telemetry", "power_w", "outage") == 20
    store.close()


def test_hung_server_costs_the_timeout_not_a_hang(
    influxd_factory: Callable[..., InfluxdServer],
) -> None:
    server = influxd_factory()
    store = InfluxV1Store(server.url, "hung", timeout_s=0.5)
    store.write(_telemetry(1))
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=r"no answer within 0.5 s"):
            store.write(_telemetry(10, start=1))
        assert time.monotonic() - started < 60  # a hang guard: the 0.5 s timeout fired (match)
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    store.write(_telemetry(10, start=1))
    assert server.count("telemetry", "power_w", "hung") == 11
    store.close()


def test_credentials_are_used_and_never_shown(
    influxd_factory: Callable[..., InfluxdServer],
) -> None:
    server = influxd_factory(admin=("gridcoord", "s3cret-Pa55"))
    good = InfluxV1Store(server.url, "authdb", username="gridcoord", password="s3cret-Pa55")
    good.write(_telemetry(3))
    assert server.count("telemetry", "power_w", "authdb") == 3
    wrong = InfluxV1Store(server.url, "authdb", username="gridcoord", password="wr0ng-Pa55")
    with pytest.raises(StoreUnavailable) as caught:
        wrong.write(_telemetry(3, start=3))
    assert "401" in str(caught.value)
    assert "wr0ng-Pa55" not in str(caught.value) and "s3cret" not in str(caught.value)
    in_url = InfluxV1Store(
        server.url.replace("://", "://gridcoord:wr0ng-Pa55@"), "authdb", timeout_s=2
    )
    with pytest.raises(StoreUnavailable) as caught:
        in_url.write(_telemetry(1))
    assert "wr0ng-Pa55" not in str(caught.value)
    for store in (good, wrong, in_url):
        store.close()


def test_server_restarted_mid_stream_loses_nothing_through_the_spool(
    influxd_factory: Callable[..., InfluxdServer],
) -> None:
    """The storage pieces compose: failed batches wait in the spool and replay in order."""
    server = influxd_factory()
    store = InfluxV1Store(server.url, "stream", timeout_s=2)
    spool = Spool(server.directory / "spool", max_bytes=64 << 20)

    def deliver(batch: list[Point]) -> None:
        try:
            while (oldest := spool.peek_oldest()) is not None:
                store.write(oldest)
                spool.ack_oldest()
            store.write(batch)
        except StoreUnavailable:
            spool.append(batch)

    for number in range(30):
        if number == 10:
            server.stop()
        if number == 20:
            server.start()
        deliver(_telemetry(500, start=number * 500))
    deliver([])
    assert spool.batches_pending == 0
    assert server.count("telemetry", "power_w", "stream") == 30 * 500
    store.close()


def test_database_dropped_behind_our_back_is_created_again(
    store: InfluxV1Store, influxd_server: InfluxdServer, influx_database: str
) -> None:
    store.write(_telemetry(5))
    influxd_server.query(f'DROP DATABASE "{influx_database}"')
    store.write(_telemetry(5, start=5))
    assert influxd_server.count("telemetry", "power_w", influx_database) == 5


def test_user_without_admin_rights_writes_to_an_existing_database(
    influxd_factory: Callable[..., InfluxdServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = influxd_factory(admin=("admin", "adm1n-Pa55"))
    server.query('CREATE DATABASE "city"')
    server.query("CREATE USER \"writer\" WITH PASSWORD 'wr1ter-Pa55'")
    server.query('GRANT ALL ON "city" TO "writer"')
    store = InfluxV1Store(server.url, "city", username="writer", password="wr1ter-Pa55")
    store.write(_telemetry(4))
    assert server.count("telemetry", "power_w", "city") == 4
    assert "may not create databases" in caplog.text
    assert "wr1ter" not in caplog.text
    store.close()


def test_points_beyond_the_retention_policy_are_refused_the_recent_stored(
    store: InfluxV1Store, influxd_server: InfluxdServer, influx_database: str
) -> None:
    store.write(_telemetry(1))  # creates the database
    influxd_server.query(
        f'CREATE RETENTION POLICY "short" ON "{influx_database}" DURATION 1h REPLICATION 1 DEFAULT'
    )
    now_ns = time.time_ns()
    recent = [Point("kpi", {}, {"v": float(i)}, now_ns - i * 10**9) for i in range(10)]
    old = [Point("kpi", {}, {"v": float(i)}, now_ns - 86_400 * 10**9 - i) for i in range(300)]
    with pytest.raises(StoreRejected, match="300 of 310") as caught:
        store.write([*old[:150], *recent, *old[150:]])
    assert caught.value.rejected == old
    assert influxd_server.count("kpi", "v", influx_database) == 10


def _readings(count: int) -> list[Reading]:
    return [
        Reading("pv-1", AssetKind.PV, "z-1", T0 + timedelta(seconds=i), {"power_w": float(i)})
        for i in range(count)
    ]


def test_readings_are_written_as_their_points_would_be(
    store: InfluxV1Store, influxd_server: InfluxdServer, influx_database: str
) -> None:
    readings = _readings(30)
    store.write_readings(readings)
    got = store.series(
        "telemetry", "power_w", {"asset_id": "pv-1", "zone": "z-1"}, T0, T0 + timedelta(minutes=1)
    )
    assert got == [(r.ts, r.fields["power_w"]) for r in readings]


def test_a_refused_reading_is_named_as_its_point_and_costs_no_other(
    store: InfluxV1Store, influxd_server: InfluxdServer, influx_database: str
) -> None:
    # The fast path sends lines; on a refusal the batch goes the point way, which names it.
    # Text in `status` first (type conflicts are per shard: the same week as the readings).
    text = Point(
        "telemetry", {"asset_id": "pv-9", "kind": "pv"}, {"status": "ok"}, datetime_to_ns(T0)
    )
    store.write([text])
    readings = _readings(40)
    bad = Reading("pv-9", AssetKind.PV, None, T0, {"status": 3.0})  # float where text is
    with pytest.raises(StoreRejected, match=r"refused 1 of 41 points") as caught:
        store.write_readings([*readings[:10], bad, *readings[10:]])
    assert caught.value.rejected == [reading_to_point(bad)]
    assert influxd_server.count("telemetry", "power_w", influx_database) == 40


def test_a_reading_line_protocol_cannot_carry_is_refused_alone(
    store: InfluxV1Store, influxd_server: InfluxdServer, influx_database: str
) -> None:
    bad = Reading("line\nbreak", AssetKind.PV, None, T0, {"power_w": 1.0})
    with pytest.raises(StoreRejected) as caught:
        store.write_readings([*_readings(3), bad])
    assert caught.value.rejected == [reading_to_point(bad)]
    assert influxd_server.count("telemetry", "power_w", influx_database) == 3
