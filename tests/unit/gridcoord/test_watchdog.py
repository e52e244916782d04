"""Watchdog: a thread that ends or an event loop that blocks is reported once, by name."""

from __future__ import annotations

import asyncio
import threading
import time

from gridcoord.watchdog import Watchdog


def test_a_thread_that_dies_is_fatal_and_named() -> None:
    reported: list[str] = []
    fired = threading.Event()

    def on_fatal(problem: str) -> None:
        reported.append(problem)
        fired.set()

    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=True)
    worker.start()
    dog = Watchdog(on_fatal, interval_s=0.02)
    dog.watch_thread("ingest writer", worker.is_alive)
    dog.start()
    assert not fired.wait(0.2)  # alive: nothing to report
    release.set()  # the thread ends
    assert fired.wait(60)
    dog.stop()
    assert reported == ["the ingest writer thread died"]
    assert dog.fired


def test_a_blocked_event_loop_is_fatal_and_a_running_one_is_not() -> None:
    fired = threading.Event()
    reported: list[str] = []

    def on_fatal(problem: str) -> None:
        reported.append(problem)
        fired.set()

    async def main() -> None:
        # A stall of 2 s: a loaded machine (load 8-14 on 2 cores) does not starve a running
        # loop that long, so only the simulated block below can set it off.
        dog = Watchdog(on_fatal, interval_s=0.02, loop_stall_s=2.0)
        dog.watch_loop(asyncio.get_running_loop())
        dog.start()
        await asyncio.sleep(3.0)  # the loop runs callbacks: no report
        assert not fired.is_set()
        deadline = time.monotonic() + 60  # a hang guard
        while not fired.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)  # the bug being simulated: a blocking call on the loop
        dog.stop()

    asyncio.run(main())
    assert fired.is_set()
    assert reported[0].startswith("the event loop ran no callback")


def test_stop_before_shutdown_prevents_a_report() -> None:
    fired = threading.Event()
    alive = threading.Event()
    alive.set()
    dog = Watchdog(lambda problem: fired.set(), interval_s=0.02)
    dog.watch_thread("MQTT network", alive.is_set)
    dog.start()
    dog.stop()
    alive.clear()  # an orderly shutdown stops the thread after the watchdog
    assert not fired.wait(0.2)
