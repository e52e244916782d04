"""Which exact flow solver leads the race: a cheap, deterministic test on the instance.

LEMON's network simplex is 2–4× faster than OR-Tools' cost scaling on most cities but 5–10×
slower when a grid connection (a root zone) cannot carry what is asked below it over the
horizon: then the root binds in nearly every slot at the optimum, and the simplex pivots through
a massively degenerate face (docs/optimizer.md, "Which solver leads"). The test compares, per
root, its headroom over the horizon [kWh] with the energy requested by the sessions below it:
if roots that are short of their request carry most of the requested energy, OR-Tools leads.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from optimizer.compiled import Compiled

Leader = Literal["lemon", "ortools"]

# A root whose horizon headroom is below this share of the energy asked below it is "short".
# 1 is the natural line (the root alone must leave energy unmet); measured on the benchmark
# families: 0.84 for the stressed substation, ≥ 1.5 for every other family.
SHORT_ROOT_RATIO = 1.0


def choose_leader(compiled: Compiled) -> Leader:
    """``ortools`` if short roots carry more than half of the requested energy, else ``lemon``."""
    zoned = compiled.session_zone >= 0
    requested = float(compiled.energy_kwh.sum())
    if requested <= 0 or compiled.n_zones == 0 or not zoned.any():
        return "lemon"
    depth = compiled.session_zone_at_depth[zoned]
    root_of_session = depth[:, 0]  # the depth-0 ancestor is the session's root zone
    asked = np.bincount(
        root_of_session, weights=compiled.energy_kwh[zoned], minlength=compiled.n_zones
    )
    headroom = compiled.zone_capacity_kw.sum(axis=1) * compiled.dt
    roots = compiled.zone_parent < 0
    short = roots & (asked > 0) & (headroom < SHORT_ROOT_RATIO * asked)
    return "ortools" if float(asked[short].sum()) > 0.5 * requested else "lemon"
