"""The LP of DESIGN 3.5 in its network form, as index arrays shared by every way of solving it.

Per slot, session power flows through its zone chain to the city's grid connection. Instead of
one row per zone that sums every session below it (a session in a feeder of a substation would
then sit in both rows, and every session in the import row), each zone gets a flow variable
``f[z,t] ∈ [0, capacity[z,t]]`` and a balance row

    f[z,t] − Σ_{sessions directly in z} p[s,t] − Σ_{child zones} f[c,t] = 0,

and the import row only sees the root flows:

    imp[t] − Σ_{roots} f[r,t] − Σ_{sessions without zone} p[s,t] ≥ base[t] − renewable[t].

Each power variable is then in one balance row, its energy row and (only where sessions on a
charger can together exceed it) one charger row: about two non-zeros per variable instead of
depth + 2. The optimum is the same LP's: substituting the flows back gives the zone-sum rows.

Rows that cannot bind are left out (a charger row where its sessions' own bounds cannot exceed
it, an energy row a session cannot reach even at full power in every slot of its window); they
are implied by the variable bounds, so the optimum is unchanged.

Objective (lexicographic, see docs/optimizer.md for the proof): minimise

    Σ_t w[t]·dt·imp[t] − M·dt·Σ p[s,t]      with M = 2·max_t w[t]  (> max_t w[t])

which equals M·Σ unmet + import cost − M·Σ energy (a constant), and whose optimum is the
least-unmet plan with the least import cost among those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.compiled import Compiled, FloatArray, IntArray

# M = UNMET_WEIGHT_FACTOR · max_t w[t]; any factor > 1 is exact (docs/optimizer.md).
UNMET_WEIGHT_FACTOR = 2.0


@dataclass(frozen=True)
class Layout:
    """Columns, rows and non-zeros of the LP (coordinate form), columns ordered p, f, imp.

    Attributes
    ----------
    power_session, power_slot
        session and slot of each power column.
    flow_zone, flow_slot
        zone and slot of each flow column.
    col_cost, col_lower, col_upper
        objective and bounds of every column.
    row_lower, row_upper
        bounds of every row.
    row_kind
        0 zone balance, 1 import, 2 charger, 3 energy.
    row_ref, row_slot
        zone / slot / charger / session of each row (slot -1 for energy).
    entry_row, entry_col, entry_value
        the constraint matrix in coordinate form.
    unmet_weight
        M, scaled like the objective (import weights divided by their maximum).
    cost_scale
        the objective above is divided by max_t w[t] to keep it near 1.
    """

    power_session: IntArray
    power_slot: IntArray
    flow_zone: IntArray
    flow_slot: IntArray
    col_cost: FloatArray
    col_lower: FloatArray
    col_upper: FloatArray
    row_lower: FloatArray
    row_upper: FloatArray
    row_kind: IntArray
    row_ref: IntArray
    row_slot: IntArray
    entry_row: IntArray
    entry_col: IntArray
    entry_value: FloatArray
    unmet_weight: float
    cost_scale: float

    @property
    def n_power(self) -> int:
        """Number of power columns."""
        return len(self.power_session)

    @property
    def n_cols(self) -> int:
        """Number of columns."""
        return len(self.col_cost)

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.row_lower)

    def power_from_columns(self, values: FloatArray, compiled: Compiled) -> FloatArray:
        """[S, T] power [kW] from a vector of column values."""
        power = np.zeros((compiled.n_sessions, compiled.slots))
        power[self.power_session, self.power_slot] = values[: self.n_power]
        return power


def build_layout(compiled: Compiled) -> Layout:
    """Index arrays of the LP of `compiled` (see the module docstring)."""
    slots, dt = compiled.slots, compiled.dt
    rows_s, rows_t = np.nonzero(compiled.window & (compiled.energy_kwh > 0)[:, None])
    power_session, power_slot = rows_s.astype(np.int64), rows_t.astype(np.int64)
    n_power = len(power_session)
    session_zone = compiled.session_zone[power_session]

    # Zone-slots that carry any power: a flow column and a balance row each.
    active = np.zeros((compiled.n_zones, slots), dtype=bool)
    at_depth = compiled.session_zone_at_depth[power_session]
    for depth in range(at_depth.shape[1]):
        zone = at_depth[:, depth]
        keep = zone >= 0
        active[zone[keep], power_slot[keep]] = True
    flow_zone, flow_slot = (a.astype(np.int64) for a in np.nonzero(active))
    n_flow = len(flow_zone)
    # One spare row at the end, so that zone index -1 ("no zone") looks up -1 safely.
    flow_index = np.full((compiled.n_zones + 1, slots), -1, dtype=np.int64)
    flow_index[flow_zone, flow_slot] = np.arange(n_flow)

    # Rows: balance (one per flow), import (one per slot), charger, energy.
    n_balance = n_flow
    import_row0 = n_balance
    bound_kw = compiled.session_max_kw[power_session]
    charger_of = compiled.session_charger[power_session]
    charger_sum = np.zeros((compiled.n_chargers, slots))
    np.add.at(charger_sum, (charger_of, power_slot), bound_kw)
    need_charger = charger_sum > compiled.charger_max_kw[:, None] * (1 + 1e-12)
    charger_c, charger_t = (a.astype(np.int64) for a in np.nonzero(need_charger))
    charger_row = np.full((compiled.n_chargers, slots), -1, dtype=np.int64)
    charger_row0 = import_row0 + slots
    charger_row[charger_c, charger_t] = charger_row0 + np.arange(len(charger_c))
    reach_kwh = np.zeros(compiled.n_sessions)
    np.add.at(reach_kwh, power_session, bound_kw * dt)
    need_energy = reach_kwh > compiled.energy_kwh * (1 + 1e-12)
    energy_s = np.nonzero(need_energy)[0].astype(np.int64)
    energy_row0 = charger_row0 + len(charger_c)
    energy_row = np.full(compiled.n_sessions, -1, dtype=np.int64)
    energy_row[energy_s] = energy_row0 + np.arange(len(energy_s))
    n_rows = energy_row0 + len(energy_s)

    rows: list[IntArray] = []
    cols: list[IntArray] = []
    vals: list[FloatArray] = []
    power_col = np.arange(n_power, dtype=np.int64)
    # Power into its zone's balance row, or straight into the import row.
    into = np.where(
        session_zone >= 0,
        flow_index[session_zone, power_slot],
        import_row0 + power_slot,
    )
    rows.append(into)
    cols.append(power_col)
    vals.append(np.full(n_power, -1.0))
    has_charger_row = charger_row[charger_of, power_slot]
    keep = has_charger_row >= 0
    rows.append(has_charger_row[keep])
    cols.append(power_col[keep])
    vals.append(np.ones(int(keep.sum())))
    has_energy_row = energy_row[power_session]
    keep = has_energy_row >= 0
    rows.append(has_energy_row[keep])
    cols.append(power_col[keep])
    vals.append(np.full(int(keep.sum()), dt))
    # Flow: +1 in its own balance row, −1 in the parent's row (or the import row for a root).
    flow_col = n_power + np.arange(n_flow, dtype=np.int64)
    parent = compiled.zone_parent[flow_zone]
    up = np.where(parent >= 0, flow_index[parent, flow_slot], import_row0 + flow_slot)
    rows += [np.arange(n_flow, dtype=np.int64), up]
    cols += [flow_col, flow_col]
    vals += [np.ones(n_flow), np.full(n_flow, -1.0)]
    import_col = n_power + n_flow + np.arange(slots, dtype=np.int64)
    rows.append(import_row0 + np.arange(slots, dtype=np.int64))
    cols.append(import_col)
    vals.append(np.ones(slots))

    scale = float(compiled.import_weight.max())
    unmet_weight = UNMET_WEIGHT_FACTOR  # M / max w
    col_cost = np.concatenate(
        [
            np.full(n_power, -unmet_weight * dt),
            np.zeros(n_flow),
            compiled.import_weight / scale * dt,
        ]
    )
    col_lower = np.zeros(n_power + n_flow + slots)
    col_upper = np.concatenate(
        [bound_kw, compiled.zone_capacity_kw[flow_zone, flow_slot], np.full(slots, np.inf)]
    )
    row_lower = np.concatenate(
        [
            np.zeros(n_balance),
            compiled.base_load_kw - compiled.renewable_kw,
            np.full(len(charger_c) + len(energy_s), -np.inf),
        ]
    )
    row_upper = np.concatenate(
        [
            np.zeros(n_balance),
            np.full(slots, np.inf),
            compiled.charger_max_kw[charger_c],
            compiled.energy_kwh[energy_s],
        ]
    )
    row_kind = np.concatenate(
        [
            np.zeros(n_balance, dtype=np.int64),
            np.ones(slots, dtype=np.int64),
            np.full(len(charger_c), 2, dtype=np.int64),
            np.full(len(energy_s), 3, dtype=np.int64),
        ]
    )
    row_ref = np.concatenate([flow_zone, np.arange(slots), charger_c, energy_s]).astype(np.int64)
    row_slot = np.concatenate(
        [flow_slot, np.arange(slots), charger_t, np.full(len(energy_s), -1)]
    ).astype(np.int64)
    assert len(row_lower) == n_rows
    return Layout(
        power_session=power_session,
        power_slot=power_slot,
        flow_zone=flow_zone,
        flow_slot=flow_slot,
        col_cost=col_cost,
        col_lower=col_lower,
        col_upper=col_upper,
        row_lower=row_lower,
        row_upper=row_upper,
        row_kind=row_kind,
        row_ref=row_ref,
        row_slot=row_slot,
        entry_row=np.concatenate(rows),
        entry_col=np.concatenate(cols),
        entry_value=np.concatenate(vals),
        unmet_weight=unmet_weight,
        cost_scale=scale,
    )
