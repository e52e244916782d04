"""`/health/live` answers while a planning run or a dispatch is in progress.

The real `Service` in-process (real Mosquitto, embedded store, the HTTP API on a free port).
The coordinator's `plan` or `dispatch` is held on an event: while it is held, the test asks
`/health/live` and must get its answer. Nothing is timed: the held call is released only
after the answer came (or after the client gave up, which fails the test). Before the
dispatch moved to a worker thread, a held dispatch held the event loop, and liveness never
answered while it ran.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridcoord.config import Config
from gridcoord.local_broker import LocalBroker
from gridcoord.service import Service
from gridcoord.service_thread import ServiceThread
from tests.fixtures.mosquitto import rig_accounts

pytestmark = pytest.mark.integration

_RIG = rig_accounts()


def city(port: int, tmp_path: Path) -> Config:
    return Config(
        zones=[{"id": "lt-01", "capacity_kw": 30.0, "meter": "meter-lt-01"}],
        assets=[
            {"id": "meter-lt-01", "kind": "meter", "zone": "lt-01", "rated_kw": 100.0},
            {"id": "charger-001", "kind": "charger", "zone": "lt-01", "rated_kw": 22.0},
        ],
        mqtt={
            "host": "127.0.0.1",
            "port": port,
            "username": _RIG.service_user,
            "password": _RIG.service_password,
        },
        storage={
            "kind": "embedded",
            "path": tmp_path / "store.sqlite3",
            "spool_dir": tmp_path / "spool",
        },
        api={"port": 0, "state_dir": tmp_path / "api", "anonymous_role": "viewer"},
    )


class Held:
    """Wraps a coordinator method: the call announces itself and waits to be released."""

    def __init__(self, method: Callable[..., Any]) -> None:
        self.method = method
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        # Bounded so that a failing test cannot hang the suite; the test releases it first.
        self.release.wait(120)
        return self.method(*args, **kwargs)


@pytest.mark.parametrize("held_call", ["plan", "dispatch"])
def test_liveness_answers_while_planning_or_dispatch_is_held(
    tmp_path: Path, mosquitto: LocalBroker, held_call: str
) -> None:
    service = Service(city(mosquitto.port, tmp_path), scheduled=False)
    runner = ServiceThread(service).start()
    try:
        assert service.api is not None and service.coordinator is not None
        assert service.planning is not None
        planning = service.planning
        held = Held(getattr(service.coordinator, held_call))
        setattr(service.coordinator, held_call, held)
        run = planning.plan_once if held_call == "plan" else planning.dispatch_once
        errors: list[BaseException] = []

        def drive() -> None:
            try:
                runner.call(run)
            except BaseException as exc:  # reported by the test below
                errors.append(exc)

        driver = threading.Thread(target=drive, daemon=True)
        driver.start()
        assert held.entered.wait(60), f"the {held_call} never started"
        try:
            # The client's own timeout is the only clock: no answer while the call is held
            # fails the test (the loop is blocked).
            answer = httpx.get(service.api.url + "health/live", timeout=20)
            summary = httpx.get(service.api.url + "api/v1/summary", timeout=20)
        finally:
            held.release.set()
        assert answer.status_code == 200 and answer.json() == {"status": "live"}
        assert summary.status_code == 200
        driver.join(60)
        assert not driver.is_alive() and not errors, errors
    finally:
        runner.stop()
