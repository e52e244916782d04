"""Issue 9, defect 1, end to end: a hostile corpus cannot stop ingest.

Through a real Mosquitto into a real `gridcoord run` (InfluxDB 1.6 behind it): the issue's
reproductions and hypothesis-generated payloads (huge integers, calendar-edge dates, deep
nesting, arbitrary JSON), interleaved with valid readings. Afterwards the service is alive,
every valid reading is stored, and every hostile one is rejected with its reason: checked on
the rejection notices (one per message, on `gridcoord/rejected/<asset>`) and on the counters
the service logs when it drains. Before the fix, the first 400-digit integer ended paho's
network thread and nothing after it was stored.
"""

from __future__ import annotations

import ast
import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import paho.mqtt.client as paho
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from gridcoord.local_broker import LocalBroker
from tests.fixtures.ingest_rig import CITY, RejectionObserver, Rig, eventually
from tests.fixtures.mosquitto import FIELD_USER

pytestmark = pytest.mark.integration

T = TypeVar("T")
BIG = "1" + "0" * 400  # the 400-digit integer
HOSTILE_ASSETS = """\
  - {id: meter-fixed, kind: meter, zone: lt-01, rated_kw: 30}
  - {id: meter-huge, kind: meter, zone: lt-01, rated_kw: 30}
  - {id: meter-dates, kind: meter, zone: lt-01, rated_kw: 30}
  - {id: meter-deep, kind: meter, zone: lt-01, rated_kw: 30}
  - {id: meter-fuzz, kind: meter, zone: lt-01, rated_kw: 30}
  - {id: charger-dep, kind: charger, zone: lt-01, rated_kw: 11}
  - id: pv-vendor-a
    kind: pv
    zone: lt-01
    rated_kw: 500
    mqtt: {topic: vendor/a/state, fields: {power_w: {path: ac.p_kw, scale: 1000}}, ts_path: time}
  - id: pv-vendor-b
    kind: pv
    zone: lt-01
    rated_kw: 500
    mqtt: {topic: vendor/b/state, fields: {power_w: {path: ac.p_kw, scale: 1000}}, ts_path: time}
"""
TELEMETRY = "gridcoord/telemetry/"

# The reproductions and their relatives: (asset's topic, payload, reason).
FIXED: list[tuple[str, bytes, str]] = [
    (TELEMETRY + "meter-fixed", f'{{"power_w": {BIG}}}'.encode(), "out_of_range"),
    (TELEMETRY + "meter-fixed", b'{"power_w": 1' + b"0" * 5000 + b"}", "out_of_range"),
    (
        TELEMETRY + "meter-fixed",
        b'{"power_w": 1, "ts": "0001-01-01T00:00:00+14:00"}',
        "bad_timestamp",
    ),
    (
        TELEMETRY + "meter-fixed",
        b'{"power_w": 1, "ts": "9999-12-31T23:59:59-14:00"}',
        "bad_timestamp",
    ),
    (TELEMETRY + "meter-fixed", f'{{"power_w": 1, "ts": {BIG}}}'.encode(), "bad_timestamp"),
    (
        TELEMETRY + "charger-dep",
        b'{"power_w": 1, "departure": "9999-12-31T23:59:59-14:00"}',
        "bad_timestamp",
    ),
    ("vendor/a/state", f'{{"ac": {{"p_kw": {BIG}}}}}'.encode(), "out_of_range"),
    ("vendor/b/state", f'{{"ac": {{"p_kw": 1}}, "time": {BIG}}}'.encode(), "bad_timestamp"),
    (TELEMETRY + "meter-fixed", b"[" * 8000 + b"]" * 8000, "oversized"),
    (TELEMETRY + "meter-fixed", b"{not json", "invalid_json"),
    (TELEMETRY + "meter-fixed", b"\xff\xfe", "not_utf8"),
    (TELEMETRY + "meter-fixed", b'{"power_w": NaN}', "not_finite"),
    (TELEMETRY + "meter-fixed", b"[1]", "not_object"),
    (TELEMETRY + "meter-fixed", b"x" * 20000, "oversized"),
    (TELEMETRY + "nobody-here", b'{"power_w": 1}', "unknown_asset"),
]


def generate(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """Up to `count` distinct examples of a strategy, the same ones on every run."""
    found: list[T] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(value: T) -> None:
        found.append(value)

    collect()
    return found


NOW = datetime.now(UTC)
huge_integers = st.integers(min_value=17, max_value=1200).flatmap(
    lambda digits: (
        st.integers(min_value=10 ** (digits - 1), max_value=10**digits - 1) | st.just(-(10**digits))
    )
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"
)
calendar = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59))


def far_from_now(days: int) -> st.SearchStrategy[str]:
    """RFC 3339 instants of any year and offset, more than `days` away from now."""

    def far(text: str) -> bool:
        try:
            when = datetime.fromisoformat(text).astimezone(UTC)
        except OverflowError:
            return True  # beyond year 1..9999 in UTC: the hardest case
        return abs(when - NOW) > timedelta(days=days)

    return st.builds(lambda d, o: d.isoformat(timespec="seconds") + o, calendar, offsets).filter(
        far
    )


json_leaves = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers()
    | huge_integers
    | far_from_now(40)
    | st.text(max_size=12)
)
fuzz_documents = st.dictionaries(
    st.sampled_from(["power_w", "energy_wh", "ts", "soc_pct", "voltage_v", "x_y"])
    | st.text(max_size=8),
    st.recursive(
        json_leaves,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=6), children, max_size=3)
        ),
        max_leaves=12,
    ),
    max_size=6,
)


def hostile_categories() -> list[tuple[str, str | None, list[bytes]]]:
    """(topic, expected reason or None for "any verdict", payloads), hypothesis-generated."""

    def dumps(document: dict[str, Any]) -> bytes:
        return json.dumps(document).encode()

    huge = generate(huge_integers, 300)
    dates = generate(far_from_now(40) | huge_integers, 300)
    departures = generate(far_from_now(40), 200)
    depths = generate(st.integers(min_value=17, max_value=3000), 100)
    fields = ["power_w", "energy_wh", "soc_pct", "x_custom"]
    return [
        (
            TELEMETRY + "meter-huge",
            "out_of_range",
            [f'{{"{fields[i % 4]}": {v}}}'.encode() for i, v in enumerate(huge)],
        ),
        (
            TELEMETRY + "meter-dates",
            "bad_timestamp",
            [dumps({"power_w": 5, "ts": d}) for d in dates],
        ),
        (
            TELEMETRY + "charger-dep",
            "bad_timestamp",
            [dumps({"power_w": 5, "departure": d}) for d in departures],
        ),
        (
            TELEMETRY + "meter-deep",
            "oversized",
            [('{"power_w": 5, "x": ' + "[" * n + "]" * n + "}").encode() for n in depths],
        ),
        ("vendor/a/state", "out_of_range", [f'{{"ac": {{"p_kw": {v}}}}}'.encode() for v in huge]),
        (
            "vendor/b/state",
            "bad_timestamp",
            [dumps({"ac": {"p_kw": 1}, "time": d}) for d in dates],
        ),
        (TELEMETRY + "meter-fuzz", None, [dumps(d) for d in generate(fuzz_documents, 1000)]),
    ]


class Publisher:
    """Publishes exact bytes at QoS 1 and waits until the broker has every one."""

    def __init__(self, broker: LocalBroker) -> None:
        port = broker.port
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id="hostile-publisher")
        self._client.username_pw_set(FIELD_USER, broker.accounts.password(FIELD_USER))
        self._client.max_inflight_messages_set(100)
        connected = threading.Event()
        self._client.on_connect = lambda *args: connected.set()
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        assert connected.wait(60)

    def publish(self, topic: str, payloads: list[bytes]) -> None:
        infos = [self._client.publish(topic, payload, qos=1) for payload in payloads]
        for info in infos:
            info.wait_for_publish(60)
            assert info.is_published()

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def test_hostile_corpus_is_rejected_with_reasons_while_valid_readings_keep_flowing(
    rig: Rig,
) -> None:
    rig.config.write_text(CITY + HOSTILE_ASSETS, encoding="utf-8")

    def valid_stored() -> int:  # the valid stream's assets only (a fuzz payload may be valid)
        series = rig.influx.query(
            """SELECT count("power_w") FROM "telemetry" WHERE "asset_id" =~ /^pv-\\d{4}$/""",
            rig.database,
        )
        return int(series[0]["values"][0][1]) if series else 0

    categories = hostile_categories()
    hostile = len(FIXED) + sum(len(p) for _, _, p in categories)
    # Every notice published: at 1,000 a second (the old setting) the token bucket ran dry once
    # ingest got faster (issue 16) and the fuzz category lost 18 of its 1,000 notices.
    proc = rig.start(GRIDCOORD_MQTT__REJECTED_PER_S="1000000")
    observer = RejectionObserver(rig.broker)
    publisher = Publisher(rig.broker)
    try:
        sent = rig.publish_all(0, 50)
        round_ = 1
        for topic, payload, _ in FIXED:
            publisher.publish(topic, [payload])
        for topic, _, payloads in categories:
            sent += rig.publish_all(round_ * 50, 50)  # valid readings between each category
            round_ += 1
            publisher.publish(topic, payloads)
        sent += rig.publish_all(round_ * 50, 50)
        # Messages reach gridcoord in order: once the last valid ones are stored, every
        # hostile one before them has had its verdict.
        assert eventually(valid_stored, sent, timeout=120) == sent
        assert proc.process is not None and proc.process.poll() is None  # alive
    finally:
        publisher.close()
    assert proc.terminate() == 0
    drained = proc.wait_for_log(r"ingest drained: .*; rejected (\{.*?\})")
    counters: dict[str, int] = ast.literal_eval(drained.group(1))
    observer_notices = observer.wait_for(sum(counters.values()), timeout=60)
    observer.close()
    assert "internal_error" not in counters, counters
    assert "Traceback" not in proc.output

    by_asset: dict[str, Counter[str]] = {}
    for topic, notice in observer_notices:
        by_asset.setdefault(topic.rsplit("/", 1)[1], Counter())[notice["reason"]] += 1
    expected: dict[str, Counter[str]] = {}
    asset_of: Callable[[str], str] = lambda topic: {  # noqa: E731
        "vendor/a/state": "pv-vendor-a",
        "vendor/b/state": "pv-vendor-b",
    }.get(topic, topic.rsplit("/", 1)[1])
    for topic, _, reason in FIXED:
        expected.setdefault(asset_of(topic), Counter())[reason] += 1
    for topic, reason, payloads in categories:
        if reason is not None:
            expected.setdefault(asset_of(topic), Counter())[reason] += len(payloads)
    fuzz = by_asset.pop("meter-fuzz", Counter())
    assert by_asset == expected
    # The arbitrary documents: each one stored or rejected with a contract reason, none lost.
    fuzz_payloads = categories[-1][2]
    stored_fuzz = len(
        rig.influx.rows(
            """SELECT * FROM "telemetry" WHERE "asset_id" = 'meter-fuzz'""", rig.database
        )
    )
    assert sum(fuzz.values()) + stored_fuzz == len(fuzz_payloads), (fuzz, stored_fuzz)
    # The counters agree with the notices: one count per rejected message.
    assert sum(counters.values()) == sum(sum(c.values()) for c in expected.values()) + sum(
        fuzz.values()
    )
    print(
        f"hostile corpus: {hostile} payloads ({len(FIXED)} fixed, "
        + ", ".join(f"{asset_of(t)} {len(p)}" for t, _, p in categories)
        + f"); {sent} valid readings stored; rejected {counters}; fuzz stored {stored_fuzz}"
    )
