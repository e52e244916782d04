"""`gridcoord simulate --config FILE`: serve simulated Modbus devices until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gridcoord.config import Asset


def simulate_command(config: Path) -> int:
    """Run simulated devices for every Modbus-read asset of the configuration.

    Returns 0 after SIGINT/SIGTERM, 2 for an invalid configuration or a port in use.
    """
    from gridcoord.config import load_config
    from gridcoord.config_errors import ConfigError

    try:
        settings = load_config(config)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 2
    return asyncio.run(_serve(settings.assets, settings.site.longitude))


async def _serve(assets: Sequence[Asset], longitude: float) -> int:
    from adapters.modbus.fleet import build_fleet
    from adapters.modbus.maps import MapError

    try:
        servers = build_fleet(assets, longitude=longitude)
    except (MapError, ValueError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = []
    try:
        for server in servers:
            try:
                await server.start()
            except (OSError, RuntimeError) as exc:
                print(
                    f"simulate: cannot listen on {server.host}:{server.port} ({exc})",
                    file=sys.stderr,
                )
                return 2
            started.append(server)
            units = ", ".join(str(u.unit_id) for u in server.units)
            print(f"simulating Modbus units {units} on {server.host}:{server.port}", flush=True)
        if not servers:
            print("simulate: no Modbus-read assets in this configuration", flush=True)
        await stop.wait()
    finally:
        for server in started:
            await server.stop()
    return 0
