"""The telemetry contract every adapter speaks: readings, asset kinds, ids and validation.

A leaf package: it imports nothing of gridcoord, so adapters depend on it and gridcoord
depends on both, never the other way round (enforced by the import-linter contracts in
``pyproject.toml``).
"""
