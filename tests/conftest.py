"""Shared pytest setup: real-service fixtures live in tests/fixtures/, one module per service."""

pytest_plugins = [
    "tests.fixtures.ports",
    "tests.fixtures.mosquitto",
    "tests.fixtures.influx",
    "tests.fixtures.modbus",
    "tests.fixtures.ingest_rig",
]
