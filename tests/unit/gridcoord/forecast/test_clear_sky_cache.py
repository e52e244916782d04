"""`pv.clear_sky_kw` remembers each instant's value: the same floats as pvlib, asked any way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gridcoord.forecast import pv

FLEET = pv.PvFleet(52.4, 10.8, 1000.0)
T0 = datetime(2026, 4, 21, 3, 0, tzinfo=UTC)
INSTANTS = [T0 + timedelta(minutes=7 * i) for i in range(160)]  # dawn to dusk and beyond
DIRECT = pv._clear_sky(FLEET, INSTANTS)


@settings(max_examples=40, deadline=None)
@given(
    asks=st.lists(st.lists(st.integers(0, len(INSTANTS) - 1), min_size=1, max_size=60), max_size=5),
    fresh=st.booleans(),
)
def test_a_remembered_value_is_pvlib_s_whatever_it_was_asked_with(
    asks: list[list[int]], fresh: bool
) -> None:
    if fresh:
        pv._clear_sky_cache.clear()
    for ask in [*asks, list(range(len(INSTANTS)))]:
        got = pv.clear_sky_kw(FLEET, [INSTANTS[i] for i in ask])
        assert got.tolist() == [float(DIRECT[i]) for i in ask]


def test_other_fleets_and_a_full_cache_are_computed_afresh() -> None:
    other = pv.PvFleet(48.1, 11.6, 500.0)
    mine = pv.clear_sky_kw(FLEET, INSTANTS[60:70])
    theirs = pv.clear_sky_kw(other, INSTANTS[60:70])
    assert theirs.tolist() == pv._clear_sky(other, INSTANTS[60:70]).tolist()
    assert mine.tolist() != theirs.tolist()
    # Full of another fleet's (bogus) values: a miss clears it rather than grow without end.
    pv._clear_sky_cache.clear()
    pv._clear_sky_cache.update(
        {(other, T0 - timedelta(minutes=i)): -1.0 for i in range(pv._CLEAR_SKY_CACHE_MAX)}
    )
    assert pv.clear_sky_kw(FLEET, INSTANTS[:5]).tolist() == DIRECT[:5].tolist()
    assert len(pv._clear_sky_cache) == 5
