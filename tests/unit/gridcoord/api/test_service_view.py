"""`ServiceView`: one frozen `StateImage` per frame, shared by assets, sessions and setpoints.

A real `Coordinator` (its image counted) behind a stand-in for the parts of `Service` the view
reads; no servers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from adapters.contract.reading import AssetKind, Reading
from gridcoord.api.overrides import OverrideBook
from gridcoord.api.service_view import ServiceView
from gridcoord.config import Config
from gridcoord.planning.coordinator import Coordinator
from gridcoord.planning.state import StateImage

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class CountingCoordinator(Coordinator):
    """The real coordinator, counting how often its state is frozen."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.freezes = 0

    def image(self, now: datetime) -> StateImage:
        self.freezes += 1
        return super().image(now)


def view(tmp_path: Path) -> tuple[ServiceView, CountingCoordinator]:
    config = Config(
        zones=[{"id": "lt-01", "capacity_kw": 40.0, "meter": "meter-lt-01"}],
        assets=[
            {"id": "meter-lt-01", "kind": "meter", "zone": "lt-01", "rated_kw": 60.0},
            {"id": "charger-001", "kind": "charger", "zone": "lt-01", "rated_kw": 11.0},
        ],
        api={"state_dir": tmp_path},
    )
    coordinator = CountingCoordinator(config)
    coordinator.observe(Reading("meter-lt-01", AssetKind.METER, "lt-01", NOW, {"power_w": 9e3}))
    coordinator.observe(
        Reading(
            "charger-001",
            AssetKind.CHARGER,
            "lt-01",
            NOW,
            {"power_w": 7e3, "connected": True},
        )
    )
    service: Any = SimpleNamespace(
        config=config,
        coordinator=coordinator,
        planning=None,
        modbus=None,
        pipeline=None,
        session=None,
        rejections=None,
    )
    return ServiceView(service, OverrideBook(config, tmp_path / "o.json"), lambda: NOW), coordinator


def test_one_image_per_frame_for_assets_zones_and_sessions(tmp_path: Path) -> None:
    city, coordinator = view(tmp_path)
    assets, zones, sessions = city.assets(), city.zones(), city.sessions()
    city.totals()
    assert coordinator.freezes == 1
    assert [a.id for a in assets if a.available] == ["meter-lt-01", "charger-001"]
    assert zones[0].load_kw == 9.0
    assert [s.charger_id for s in sessions] == ["charger-001"]


def test_sessions_and_assets_come_from_the_same_instant(tmp_path: Path) -> None:
    city, coordinator = view(tmp_path)
    sessions = city.sessions()
    # A reading after the frame was made shows in neither until the next frame.
    coordinator.observe(
        Reading("charger-001", AssetKind.CHARGER, "lt-01", NOW, {"power_w": 1e3, "connected": True})
    )
    assert city.sessions() == sessions
    assert next(a for a in city.assets() if a.id == "charger-001").power_kw == 7.0
    assert coordinator.freezes == 1
