"""The demo city's layout: a Wolfsburg-like grid with a few hundred chargers, made from a seed.

One substation, feeders below it, local transformers below those; on each local transformer a
group of households (one aggregate meter), rooftop PV and chargers; a commercial meter per
feeder; a PV park and a wind farm. `CityLayout.config()` gives the zones and assets in the
configuration's shape (DESIGN 3.6); the layout also keeps what only the simulation needs
(households per transformer, charger types). Ids are pseudonymous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gridcoord.config import ChargerType
from gridcoord.simulation.noise import stream_seed
from gridcoord.simulation.weather import WindFarm


@dataclass(frozen=True, slots=True)
class SimZone:
    """A zone: id, parent, rating [kW], its meter's id."""

    id: str
    parent: str | None
    rating_kw: float
    meter: str


@dataclass(frozen=True, slots=True)
class SimCharger:
    """A charger: id, zone, type, rating, safe power and guaranteed minimum [kW]."""

    id: str
    zone: str
    type: ChargerType
    max_kw: float
    safe_power_kw: float
    guaranteed_kw: float


@dataclass(frozen=True, slots=True)
class SimLoad:
    """An aggregate consumer meter: households (H0-like) or businesses (G0-like)."""

    id: str
    zone: str
    kind: str  # "household" | "commercial"
    mean_kw: float
    rated_kw: float


@dataclass(frozen=True, slots=True)
class SimPv:
    """A PV plant (rooftops aggregated per transformer, or a park) [kW]."""

    id: str
    zone: str
    rated_kw: float


@dataclass(frozen=True, slots=True)
class CityLayout:
    """Everything about the demo city that does not change with time."""

    latitude: float
    longitude: float
    zones: tuple[SimZone, ...]
    chargers: tuple[SimCharger, ...]
    loads: tuple[SimLoad, ...]
    pv: tuple[SimPv, ...]
    wind_id: str
    wind_zone: str
    wind_farm: WindFarm

    def config(self) -> dict[str, Any]:
        """Zones and assets (and the site) as a mapping `gridcoord.config.Config` accepts."""
        assets: list[dict[str, Any]] = [
            {"id": z.meter, "kind": "meter", "zone": z.id, "rated_kw": 2.0 * z.rating_kw}
            for z in self.zones
        ]
        assets += [
            {"id": load.id, "kind": "meter", "zone": load.zone, "rated_kw": load.rated_kw}
            for load in self.loads
        ]
        assets += [
            {"id": p.id, "kind": "pv", "zone": p.zone, "rated_kw": p.rated_kw} for p in self.pv
        ]
        assets.append(
            {
                "id": self.wind_id,
                "kind": "wind",
                "zone": self.wind_zone,
                "rated_kw": self.wind_farm.rated_kw,
            }
        )
        assets += [
            {
                "id": c.id,
                "kind": "charger",
                "zone": c.zone,
                "rated_kw": c.max_kw,
                "charger": {
                    "type": c.type.value,
                    "safe_power_kw": c.safe_power_kw,
                    "guaranteed_kw": c.guaranteed_kw,
                },
            }
            for c in self.chargers
        ]
        zones = [
            {
                "id": z.id,
                **({"parent": z.parent} if z.parent else {}),
                "capacity_kw": z.rating_kw,
                "meter": z.meter,
            }
            for z in self.zones
        ]
        site = {"name": "wolfsburg-demo", "latitude": self.latitude, "longitude": self.longitude}
        return {"site": site, "zones": zones, "assets": assets}


def demo_city(
    seed: int = 1,
    chargers: int = 300,
    feeders: int = 4,
    transformers_per_feeder: int = 4,
    latitude: float = 52.4227,
    longitude: float = 10.7865,
) -> CityLayout:
    """Generate the demo city.

    Local transformers are rated 250 kW and carry 180-280 households, so that their winter
    evening peak plus uncontrolled charging overloads some of them: the case coordination is for.

    Parameters
    ----------
    seed
        makes the city (and, in the simulation, its weather and cars) reproducible.
    chargers
        number of chargers (60 % home 11 kW, half of them with the §14a minimum of
        4.2 kW; 25 % workplace 11/22 kW; 15 % public 22 kW).
    feeders
        feeders under the substation.
    transformers_per_feeder
        local transformers under each feeder.
    latitude
        site latitude [degrees north].
    longitude
        site longitude [degrees east].
    """
    rng = np.random.default_rng(stream_seed(seed, "city"))
    zones = [SimZone("sub-1", None, 8000.0, "meter-sub-1")]
    loads: list[SimLoad] = []
    pv: list[SimPv] = []
    transformers: list[str] = []
    for f in range(1, feeders + 1):
        feeder = f"feeder-{f}"
        zones.append(SimZone(feeder, "sub-1", 2000.0, f"meter-{feeder}"))
        business = float(rng.uniform(60.0, 150.0))
        loads.append(SimLoad(f"meter-com-{f:02d}", feeder, "commercial", business, 4.0 * business))
        for _ in range(transformers_per_feeder):
            index = len(transformers) + 1
            lt = f"lt-{index:02d}"
            transformers.append(lt)
            zones.append(SimZone(lt, feeder, 250.0, f"meter-{lt}"))
            households = int(rng.integers(180, 281))
            loads.append(
                SimLoad(
                    f"meter-hh-{index:02d}", lt, "household", 0.4 * households, 1.5 * households
                )
            )
            pv.append(SimPv(f"pv-roof-{index:02d}", lt, float(rng.uniform(40.0, 160.0))))
    pv.append(SimPv("pv-park-01", "feeder-2" if feeders >= 2 else "feeder-1", 3000.0))

    kinds = rng.choice(
        [ChargerType.HOME.value, ChargerType.WORKPLACE.value, ChargerType.PUBLIC.value],
        size=chargers,
        p=[0.6, 0.25, 0.15],
    )
    sim_chargers = []
    for i, kind in enumerate(kinds, start=1):
        zone = transformers[(i - 1) % len(transformers)]
        charger_type = ChargerType(str(kind))
        if charger_type is ChargerType.HOME:
            # Half the wallboxes are registered under §14a EnWG: 4.2 kW guaranteed.
            guaranteed = 4.2 if rng.random() < 0.5 else 0.0
            spec = (11.0, 4.2, guaranteed)
        elif charger_type is ChargerType.WORKPLACE:
            spec = (float(rng.choice([11.0, 22.0])), 0.0, 0.0)
        else:
            spec = (22.0, 4.2, 0.0)
        sim_chargers.append(SimCharger(f"charger-{i:04d}", zone, charger_type, *spec))
    return CityLayout(
        latitude,
        longitude,
        tuple(zones),
        tuple(sim_chargers),
        tuple(loads),
        tuple(pv),
        "wind-farm-01",
        "sub-1",
        # One 2.35 MW turbine: the city's renewables then yield about 60 % of its yearly
        # consumption (PV ~ 0.5 MW and wind ~ 0.6 MW mean against ~ 1.9 MW), close to
        # Germany's share (about 55 % in 2024); four made it 160 %, surplus nearly always.
        WindFarm(turbines=1),
    )
