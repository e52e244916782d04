"""The demo's MQTT broker: a local `mosquitto` on a free port of 127.0.0.1.

It is closed like a production broker: no anonymous access, the accounts and ACL
`gridcoord broker-config` would generate for the demo city (credentials kept in the data
directory, mode 0600). The service's client speaks MQTT 5, the demo's devices 3.1.1.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

from gridcoord.local_broker import LocalBroker, find_mosquitto

if TYPE_CHECKING:
    from gridcoord.config import Config


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MosquittoBroker:
    """`LocalBroker` on a free port, with its data under ``data_dir``."""

    name = "mosquitto"

    def __init__(self, data_dir: Path, config: Config) -> None:
        self.port = free_port()
        self._broker = LocalBroker.for_config(self.port, data_dir, config)
        self.accounts = self._broker.accounts
        self._broker.start()

    def stop(self) -> None:
        """Stop the broker process."""
        self._broker.stop()


def start_broker(data_dir: Path, config: Config) -> MosquittoBroker:
    """Start the demo's mosquitto.

    Parameters
    ----------
    data_dir
        where the broker keeps its files, credentials, log and persistence.
    config
        the demo city; its assets become the broker's device accounts.

    Raises
    ------
    RuntimeError
        mosquitto is not installed or cannot start (with the reason).
    ValueError
        the city's assets cannot become broker accounts.
    """
    if find_mosquitto() is None:
        raise RuntimeError("mosquitto not found (Debian: apt-get install mosquitto)")
    return MosquittoBroker(data_dir / "mosquitto", config)
