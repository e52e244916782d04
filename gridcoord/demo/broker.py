"""The demo's MQTT broker: a local `mosquitto` when installed, else amqtt in-process.

Both listen on 127.0.0.1 on a free port and are closed like a production broker: no anonymous
access, the accounts and ACL `gridcoord broker-config` would generate for the demo city
(credentials kept in the data directory, mode 0600). amqtt reads the same `passwd` and `acl`
files through two small plugins (`gridcoord.demo.amqtt_access`). amqtt speaks MQTT 3.1.1
only, so the demo's clients use 3.1.1 with either broker (the service's own client uses MQTT 5
with mosquitto). amqtt keeps no persistence: it is a fallback to see the demo, not a broker to
run.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gridcoord.broker.files import Accounts, accounts_for, write_access_files
from gridcoord.local_broker import LocalBroker, find_mosquitto

if TYPE_CHECKING:
    from gridcoord.config import Config

log = logging.getLogger(__name__)


class DemoBroker(Protocol):
    """A running broker the demo can stop."""

    name: str
    port: int
    accounts: Accounts

    def stop(self) -> None:
        """Stop the broker and wait for it."""
        ...


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


class InProcessBroker:
    """amqtt's broker on its own event loop in a daemon thread, with our accounts and ACL.

    Raises
    ------
    RuntimeError
        amqtt is not installed or did not start (with the reason).
    """

    name = "amqtt (in-process)"

    def __init__(self, data_dir: Path, config: Config, timeout_s: float = 10.0) -> None:
        from amqtt.broker import Broker

        self.accounts = accounts_for(config, data_dir)
        write_access_files(self.accounts, data_dir)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        plugins = "gridcoord.demo.amqtt_access"
        settings: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                f"{plugins}.PasswdAuth": {"password_file": str(data_dir / "passwd")},
                f"{plugins}.AclCheck": {"acl_file": str(data_dir / "acl")},
            },
        }

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._broker = Broker(settings, loop=self._loop)
                self._loop.run_until_complete(self._broker.start())
            except BaseException as exc:  # reported to the starting thread
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            self._loop.run_forever()

        # amqtt logs every client connect at INFO: quiet, the demo prints what matters.
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        logging.getLogger("transitions").setLevel(logging.WARNING)
        self._thread = threading.Thread(target=serve, name="demo-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            raise RuntimeError(f"the in-process broker did not start: {self._error}")

    def stop(self) -> None:
        """Shut the broker down (best effort: its thread is a daemon)."""
        future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            future.result(10.0)
        except Exception as exc:  # stopping is best effort; the thread is a daemon
            log.warning("in-process broker did not stop cleanly: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)


BROKER_CHOICES = ("auto", "mosquitto", "inprocess")


def start_broker(data_dir: Path, choice: str, config: Config) -> DemoBroker:
    """Start the demo's broker.

    Parameters
    ----------
    data_dir
        where the broker keeps its files, credentials, log and persistence.
    choice
        ``auto`` (mosquitto if installed, else in-process), ``mosquitto`` or
        ``inprocess``.
    config
        the demo city; its assets become the broker's device accounts.

    Raises
    ------
    RuntimeError
        the broker asked for cannot start (with the reason).
    ValueError
        the city's assets cannot become broker accounts.
    """
    if choice not in BROKER_CHOICES:
        raise RuntimeError(f"broker must be one of {', '.join(BROKER_CHOICES)}, got {choice!r}")
    if choice == "mosquitto" or (choice == "auto" and find_mosquitto() is not None):
        return MosquittoBroker(data_dir / "mosquitto", config)
    if choice == "auto":
        log.warning("mosquitto not found on PATH: using the in-process amqtt broker")
    return InProcessBroker(data_dir / "amqtt", config)
