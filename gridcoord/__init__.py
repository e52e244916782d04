"""gridcoord: telemetry ingest, EV charging optimisation and safe dispatch for a city grid."""

__version__ = "0.1.0"
