"""The one module of this package that imports gridcoord: the reading contract and its checks.

The adapter builds every `Reading` through `build_reading` (DESIGN 3.2 field names, the same
ranges as MQTT and Modbus). When the reading contract moves into an adapter-owned package, only
these imports change.
"""

from __future__ import annotations

from gridcoord.config import Asset
from gridcoord.reading import Reading
from gridcoord.validation import Reason, Rejected, build_reading, parse_timestamp

__all__ = ["Asset", "Reading", "Reason", "Rejected", "build_reading", "parse_timestamp"]
