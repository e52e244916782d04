"""What an adapter needs to know about a configured asset, as structural protocols.

The deployment configuration (``gridcoord.config.Asset``) satisfies these protocols; adapters
ask for them instead of importing the configuration, so the dependency runs one way.
"""

from __future__ import annotations

import re
from typing import Protocol

from adapters.contract.reading import AssetKind

# Pseudonymous ids only: short, lowercase, and safe inside an MQTT topic level.
ASSET_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
ASSET_ID_RE = re.compile(ASSET_ID_PATTERN)


class AssetInfo(Protocol):
    """The identity and rating of one asset: enough to validate its readings."""

    @property
    def id(self) -> str:
        """Pseudonymous asset id (matches `ASSET_ID_PATTERN`)."""
        ...

    @property
    def kind(self) -> AssetKind:
        """What the asset is."""
        ...

    @property
    def zone(self) -> str | None:
        """Zone the asset is connected in, if any."""
        ...

    @property
    def rated_kw(self) -> float:
        """Rated power [kW]; bounds accepted readings."""
        ...


class ChargerElectrics(Protocol):
    """The electrical details of a charger an adapter needs to turn power into current."""

    @property
    def phases(self) -> int:
        """Connected phases (1 or 3)."""
        ...

    @property
    def voltage_v(self) -> float:
        """Phase voltage [V]."""
        ...

    @property
    def min_current_a(self) -> float:
        """Lowest current the charger can hold [A]."""
        ...

    @property
    def safe_power_kw(self) -> float:
        """Power for a stale charger or an expired setpoint [kW]."""
        ...
