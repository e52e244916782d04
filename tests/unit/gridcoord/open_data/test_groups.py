"""Minimum group size over random zone trees: no published row stands for fewer households."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gridcoord.open_data.groups import group


@st.composite
def trees(draw: st.DrawFn) -> tuple[dict[str, str | None], dict[str, int], int]:
    size = draw(st.integers(1, 30))
    parents: dict[str, str | None] = {}
    for i in range(size):
        # A zone hangs below an earlier one (or is a root): always a forest, never a cycle.
        parent = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
        parents[f"z{i}"] = None if parent is None else f"z{parent}"
    households = {z: draw(st.integers(0, 25)) for z in parents}
    return parents, households, draw(st.integers(2, 20))


@given(trees())
def test_every_published_group_has_the_minimum_and_nothing_is_counted_twice(
    tree: tuple[dict[str, str | None], dict[str, int], int],
) -> None:
    parents, households, min_size = tree
    values = {z: {"energy_wh": float(n) * 1.5} for z, n in households.items()}
    published, landed = group(parents, households, values, min_size)
    assert all(g.households >= min_size for g in published)
    assert set(landed) == set(parents)
    # Every zone is published in exactly one group (or suppressed), and that group's numbers
    # are exactly the sum over the zones that landed in it.
    for g in published:
        members = [z for z, at in landed.items() if at == g.zone]
        assert sorted(members) == sorted([g.zone, *g.merged])
        assert g.households == sum(households[z] for z in members)
        assert g.values["energy_wh"] == sum(values[z]["energy_wh"] for z in members)
        for member in g.merged:  # merged only into an ancestor
            cursor = parents[member]
            while cursor is not None and cursor != g.zone:
                cursor = parents[cursor]
            assert cursor == g.zone
    # Suppressed zones: each one's whole root group is below the minimum.
    suppressed = {z for z, at in landed.items() if at is None}
    for zone in suppressed:
        assert households[zone] < min_size


def test_a_small_feeder_is_merged_into_its_substation_and_a_small_city_suppressed() -> None:
    parents: dict[str, str | None] = {"sub": None, "f1": "sub", "f2": "sub"}
    published, landed = group(parents, {"sub": 4, "f1": 12, "f2": 3}, {}, 10)
    assert [(g.zone, g.households, g.merged) for g in published] == [
        ("f1", 12, []),
        # f2's 3 households go up; with the substation's own 4 that is still 7 < 10.
    ]
    assert landed == {"f1": "f1", "f2": None, "sub": None}
    published, _ = group(parents, {"sub": 8, "f1": 12, "f2": 3}, {}, 10)
    assert [(g.zone, g.households, g.merged) for g in published] == [
        ("f1", 12, []),
        ("sub", 11, ["f2"]),
    ]
