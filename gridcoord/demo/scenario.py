"""The demo's scenarios: which days each season runs, and the default.

Fixed days, so that the demo's figures are reproducible: a Tuesday noon (UTC) in each season,
through two evening peaks and nights to Thursday noon at 48 hours. The weather follows the
month's climate (`gridcoord.simulation.weather`), the loads the BDEW profiles of the date.
"""

from __future__ import annotations

from datetime import UTC, datetime

SEASON_STARTS = {
    "winter": datetime(2026, 1, 20, 12, 0, tzinfo=UTC),
    "spring": datetime(2026, 4, 21, 12, 0, tzinfo=UTC),
    "summer": datetime(2026, 7, 21, 12, 0, tzinfo=UTC),
}
# The default was chosen for its weather alone: a windy first night for home charging and a
# bright Wednesday midday for workplace charging (spring, seed 1); the other seasons and seeds
# are as they come.
DEFAULT_SEASON = "spring"
DEFAULT_SEED = 1
DEMO_START = SEASON_STARTS[DEFAULT_SEASON]
