"""The demo's simulated city in its own process: a child that dies ends the demo, never hangs.

`DemoRun` in this process (the real service, a real mosquitto), a small city; the city's
process (`gridcoord.demo.city_process`) is killed mid-run as the kernel's OOM killer would.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

import pytest

from gridcoord.demo.broker import start_broker
from gridcoord.demo.city_process import CityProcess, CityProcessError, CitySpec
from gridcoord.demo.run import DemoRun, DemoSettings
from gridcoord.demo.scenario import DEMO_START
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.integration


def small_demo(tmp_path: Path) -> DemoRun:
    settings = DemoSettings(start=DEMO_START, hours=None, chargers=20, warmup_days=1)
    demo = DemoRun(settings, tmp_path / "store.sqlite3", lambda _line: None)
    api = demo.config.api.model_copy(update={"port": 0, "state_dir": tmp_path / "api"})
    demo.config = demo.config.model_copy(update={"api": api})
    return demo


def test_a_city_process_that_dies_ends_the_demo_with_a_clear_error(tmp_path: Path) -> None:
    demo = small_demo(tmp_path)
    broker = start_broker(tmp_path, demo.config)
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            demo.run(stop, broker.port, broker.accounts)
        except BaseException as exc:
            failure.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    try:
        runner.start()
        wait_until(lambda: demo.ticks >= 3, "three simulated minutes")
        city = demo.city_process
        assert city is not None and city.pid is not None and city.alive
        os.kill(city.pid, signal.SIGKILL)
        # Ends on its own, without `stop`: the waits of a tick end when the child does.
        runner.join(60)
        assert not runner.is_alive(), "the demo hangs on a dead city process"
    finally:
        stop.set()
        runner.join(60)
        broker.stop()
    assert len(failure) == 1, failure
    assert isinstance(failure[0], CityProcessError)
    assert f"(pid {city.pid}) was killed by signal 9" in str(failure[0])
    assert not city.alive


def test_a_city_process_that_raises_ends_with_its_traceback(tmp_path: Path) -> None:
    # A city the child cannot build (a negative number of chargers): its exception crosses
    # the pipe as the answer, and the parent raises it as the demo's error, traceback and all.
    spec = CitySpec(
        seed=1,
        chargers=-1,
        start=DEMO_START,
        prefix="gridcoord",
        port=1,  # never reached: the child fails before any device logs in
        passwords={},
        weather_service=False,
        settle_heap=False,
        log_level=logging.CRITICAL,
    )
    city = CityProcess(spec, lambda: None)
    try:
        with pytest.raises(CityProcessError) as caught:
            city.ready()
        message = str(caught.value)
        assert message.startswith("the simulated city's process failed:")
        assert "Traceback" in message and "demo_city" in message
        wait_until(lambda: not city.alive, "the failed city process to end")
    finally:
        city.close()
