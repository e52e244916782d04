"""What this package takes from the telemetry contract, and what it needs of a charger asset.

Every `Reading` is built through `build_reading` (DESIGN 3.2 field names, the same ranges as
MQTT and Modbus). The assets are asked for as a protocol, which the deployment's config
satisfies, so this package never imports gridcoord.
"""

from __future__ import annotations

from typing import Protocol

from adapters.contract.asset import AssetInfo, ChargerElectrics
from adapters.contract.reading import Reading
from adapters.contract.validation import Reason, Rejected, build_reading, parse_timestamp
from adapters.ocpp.settings import OcppStation

__all__ = [
    "Asset",
    "Reading",
    "Reason",
    "Rejected",
    "build_reading",
    "parse_timestamp",
]


class Asset(AssetInfo, Protocol):
    """An asset as the OCPP server sees it: identity, rating, charger electrics, station."""

    @property
    def charger(self) -> ChargerElectrics | None:
        """Charger details (None for other kinds)."""
        ...

    @property
    def ocpp(self) -> OcppStation | None:
        """How the asset is reached over OCPP (None: not an OCPP charger)."""
        ...
