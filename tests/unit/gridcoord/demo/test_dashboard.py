"""The demo's dashboard port: a taken default falls back to a free one; a chosen one fails."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from gridcoord.config import Api, Config
from gridcoord.demo.dashboard import DashboardPortError, dashboard_api
from gridcoord.simulation import demo_city


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port someone listens on (as another demo's dashboard would)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def test_a_taken_default_port_falls_back_to_a_free_one_and_says_how_to_choose(
    taken_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    # As the default 8080 would be: a port nobody configured (not in the fields set).
    api = Api.model_construct(_fields_set=set(), port=taken_port)
    with caplog.at_level(logging.WARNING):
        chosen = dashboard_api(api)
    assert chosen.port == 0  # any free port; the service prints the URL it got
    assert chosen.host == api.host and api.port == taken_port  # a copy, the input unchanged
    assert f"127.0.0.1:{taken_port} is taken" in caplog.text
    assert "GRIDCOORD_API__PORT" in caplog.text


def test_a_configured_port_that_is_taken_is_a_clear_error_naming_the_setting(
    taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDCOORD_API__PORT", str(taken_port))
    api = Config(**demo_city(1, 5).config()).api  # the way the demo reads its settings
    assert api.port == taken_port
    with pytest.raises(DashboardPortError, match=f"127.0.0.1:{taken_port} is taken") as raised:
        dashboard_api(api)
    assert "GRIDCOORD_API__PORT=<port>" in str(raised.value)


def test_a_free_port_any_port_or_no_dashboard_is_left_as_it_is(taken_port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        free = int(sock.getsockname()[1])
    for api in (
        Api(port=free),
        Api.model_construct(_fields_set=set(), port=free),
        Api(port=0),
        Api(port=taken_port, enabled=False),
    ):
        assert dashboard_api(api) is api
