"""Pure models of the demo city, each a function of a seed and UTC time.

Weather-driven PV and wind, household and commercial load, EV visits, and chargers that obey
setpoints.
"""

from gridcoord.outcomes import KpiAccumulator
from gridcoord.simulation.charger import SimulatedCharger
from gridcoord.simulation.city import CityLayout, demo_city
from gridcoord.simulation.ev import EvVisit, visits_on
from gridcoord.simulation.load import bdew_dynamisation, commercial_kw, household_kw
from gridcoord.simulation.stepper import CitySimulation
from gridcoord.simulation.weather import WindFarm, clear_sky_index, pv_kw, wind_kw, wind_speed_ms

__all__ = [
    "CityLayout",
    "CitySimulation",
    "EvVisit",
    "KpiAccumulator",
    "SimulatedCharger",
    "WindFarm",
    "bdew_dynamisation",
    "clear_sky_index",
    "commercial_kw",
    "demo_city",
    "household_kw",
    "pv_kw",
    "visits_on",
    "wind_kw",
    "wind_speed_ms",
]
