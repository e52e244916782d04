"""Per-zone 15-minute aggregates: sums of the raw data, whatever the sampling."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given
from hypothesis import strategies as st

from gridcoord.privacy.aggregate import MINUTE_NS, SLOT_NS, RawSeries, Source, aggregate

samples = st.lists(
    st.tuples(st.integers(0, 4 * SLOT_NS - 1), st.floats(0, 50_000, allow_nan=False)),
    max_size=40,
)
series = st.lists(
    st.tuples(st.sampled_from(["z1", "z2", ""]), samples, st.lists(st.booleans(), max_size=40)),
    max_size=6,
)


@given(series)
def test_energy_is_the_sum_of_each_assets_slot_mean_and_counts_the_reporting_assets(
    drawn: list[tuple[str, list[tuple[int, float]], list[bool]]],
) -> None:
    raw = [
        RawSeries(
            f"a{i}", zone, power, [(ts, float(c)) for (ts, _), c in zip(power, conn, strict=False)]
        )
        for i, (zone, power, conn) in enumerate(drawn)
    ]
    expected: dict[tuple[str, int], list[float]] = defaultdict(list)
    reporting: dict[tuple[str, int], int] = defaultdict(int)
    for one in raw:
        by_slot: dict[int, list[float]] = defaultdict(list)
        for ts, value in one.power:
            by_slot[ts // SLOT_NS * SLOT_NS].append(value)
        for slot, values in by_slot.items():
            expected[(one.zone, slot)].append(sum(values) / len(values) * 0.25)
            reporting[(one.zone, slot)] += 1
    result = aggregate(Source.CHARGING, raw)
    assert [(a.zone, a.slot_ns) for a in result] == sorted(expected)
    for item in result:
        key = (item.zone, item.slot_ns)
        assert abs(item.energy_wh - sum(expected[key])) <= 1e-6 * max(1.0, item.energy_wh)
        assert item.assets == reporting[key]
        assert 0 <= item.sessions_active <= item.assets  # connected only where power is
        # The peak is a one-minute sum of means: never above the sum of the assets' maxima.
        maxima = sum(
            max(v for ts, v in one.power if ts // SLOT_NS * SLOT_NS == item.slot_ns)
            for one in raw
            if one.zone == item.zone
            and any(ts // SLOT_NS * SLOT_NS == item.slot_ns for ts, _ in one.power)
        )
        assert item.peak_w <= maxima + 1e-6 * max(1.0, maxima)


def test_the_peak_is_the_largest_minute_of_the_zone_total() -> None:
    a = RawSeries("a", "z", [(0, 100.0), (MINUTE_NS, 300.0), (2 * MINUTE_NS, 100.0)])
    b = RawSeries("b", "z", [(0, 50.0), (MINUTE_NS, 60.0), (MINUTE_NS + 1, 80.0)])
    [item] = aggregate(Source.HOUSEHOLD, [a, b])
    assert item.peak_w == 300.0 + 70.0  # minute 1: a's 300 plus b's mean of 60 and 80
    assert item.energy_wh == (500.0 / 3 + 190.0 / 3) * 0.25
    assert item.assets == 2 and item.sessions_active == 0
    point = item.to_point()
    assert point.measurement == "zone_aggregate" and dict(point.tags) == {
        "zone": "z",
        "source": "household",
    }
    assert "sessions_active" not in point.fields
