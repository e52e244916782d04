"""ModbusPoller refuses assets it cannot poll, naming them (no connection is opened here)."""

from __future__ import annotations

import re

import pytest

from adapters.modbus.poller import ModbusPoller
from gridcoord.config import Asset


def _asset(asset_id: str, kind: str, register_map: str, unit_id: int = 1) -> Asset:
    modbus = {"host": "127.0.0.1", "port": 1502, "unit_id": unit_id, "register_map": register_map}
    return Asset(id=asset_id, kind=kind, rated_kw=10, modbus=modbus)  # type: ignore[arg-type]


def _poller(*assets: Asset) -> ModbusPoller:
    return ModbusPoller(list(assets), lambda reading: None, lambda *rejected: None)


def test_two_assets_on_one_unit_are_refused() -> None:
    with pytest.raises(
        ValueError, match=re.escape("'pv-1' and 'pv-2' are both unit 1 at 127.0.0.1:1502")
    ):
        _poller(_asset("pv-1", "pv", "sunspec"), _asset("pv-2", "pv", "sunspec"))


def test_a_map_for_another_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="asset 'pv-1': register map 'keba-p30' is for charger"):
        _poller(_asset("pv-1", "pv", "keba-p30"))


def test_assets_without_modbus_are_ignored_and_gateways_shared() -> None:
    plain = Asset(id="pv-9", kind="pv", rated_kw=3)  # type: ignore[arg-type]
    poller = _poller(
        plain, _asset("pv-1", "pv", "sunspec", 1), _asset("charger-1", "charger", "keba-p30", 2)
    )
    assert poller.asset_ids == ["pv-1", "charger-1"]
    assert poller.charger_ids == ["charger-1"]
    assert not poller.available("pv-1") and poller.last_good("pv-1") is None
    with pytest.raises(KeyError):
        poller.refresh_interval_s("pv-1")
    assert poller.refresh_interval_s("charger-1") == 20.0  # a third of the 60 s default
