"""The demo city's child process logs as its parent does (level and ``--log-format``)."""

from __future__ import annotations

import json
import logging

import pytest

from gridcoord.demo.city_process import CitySpec, configure_child_logging
from gridcoord.demo.scenario import DEMO_START
from gridcoord.logging_setup import LogFormat, set_defaults


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_the_city_process_logs_in_the_parents_format(
    log_format: LogFormat, capsys: pytest.CaptureFixture[str]
) -> None:
    # `gridcoord --log-format json demo`: the child's warnings (a device that lost the broker)
    # are JSON lines beside the service's, not text a log collector cannot parse.
    spec = CitySpec(
        seed=1,
        chargers=1,
        start=DEMO_START,
        prefix="gridcoord",
        port=1,
        passwords={},
        weather_service=False,
        settle_heap=False,
        log_level=logging.WARNING,
        log_format=log_format,
    )
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_child_logging(spec)
        logging.getLogger("gridcoord.demo.fleet").warning("a demo device lost the broker")
        logging.getLogger("gridcoord.demo.fleet").info("not at the parent's level")
    finally:
        root.handlers[:], root.level = saved
        set_defaults(None, "text")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    if log_format == "json":
        entry = json.loads(lines[0])
        assert entry["level"] == "warning" and entry["logger"] == "gridcoord.demo.fleet"
        assert entry["ts"].endswith("+00:00")
    else:
        assert lines[0].endswith("WARNING gridcoord.demo.fleet: a demo device lost the broker")
