"""Shared pytest setup: real-service fixtures live in tests/fixtures/, one module per service."""

from hypothesis import settings

# No wall-clock deadline on property tests: on a shared 2-core machine an example can take
# 300 ms once and 1 ms the next, and a test must not fail on timing (performance lives in bench/).
settings.register_profile("gridcoord", deadline=None)
settings.load_profile("gridcoord")

pytest_plugins = [
    "tests.fixtures.ports",
    "tests.fixtures.mosquitto",
    "tests.fixtures.influx",
    "tests.fixtures.modbus",
    "tests.fixtures.ocpp_station",
    "tests.fixtures.ingest_rig",
]
