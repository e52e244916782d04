"""The one walk up the zone tree: a zone, its parent, ... the root; bounded on a bad tree."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from gridcoord.dispatch.limits import ZoneLimit
from gridcoord.zones import ancestors, parents_of


@st.composite
def forests(draw: st.DrawFn) -> dict[str, str | None]:
    """Zone i hangs below some zone j < i or is a root: always a valid forest."""
    count = draw(st.integers(1, 30))
    parents: dict[str, str | None] = {}
    for i in range(count):
        parent = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
        parents[f"z{i}"] = None if parent is None else f"z{parent}"
    return parents


@given(forests(), st.data())
def test_the_chain_climbs_parent_by_parent_to_a_root(
    parents: dict[str, str | None], data: st.DataObject
) -> None:
    zone = data.draw(st.sampled_from(sorted(parents)))
    chain = ancestors(zone, parents)
    assert chain[0] == zone
    assert all(parents[below] == above for below, above in pairwise(chain))
    assert parents[chain[-1]] is None
    assert len(set(chain)) == len(chain)


@given(st.dictionaries(st.sampled_from("abcdef"), st.none() | st.sampled_from("abcdefxy")))
def test_any_mapping_terminates_without_repeats_or_unknown_zones(
    parents: dict[str, str | None],
) -> None:
    for zone in [*parents, "x", None]:
        chain = ancestors(zone, parents)
        assert len(set(chain)) == len(chain) <= len(parents)
        assert all(z in parents for z in chain)


def test_cycles_unknown_zones_and_no_zone() -> None:
    assert ancestors("a", {"a": "b", "b": "a"}) == ["a", "b"]
    assert ancestors("a", {"a": "gone"}) == ["a"]
    assert ancestors(None, {"a": None}) == []
    limits = [ZoneLimit("feeder", None, 50.0), ZoneLimit("lt-1", "feeder", 30.0)]
    assert ancestors("lt-1", parents_of(limits)) == ["lt-1", "feeder"]
