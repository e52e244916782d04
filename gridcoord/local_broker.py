"""A local Mosquitto for `gridcoord run` without a configured broker, and for the tests.

The configuration matters for "no QoS 1 reading lost": persistence on (queued messages of our
session survive a broker restart) and no cap on queued messages per client, since Mosquitto's
default of 1,000 silently drops QoS 1 messages beyond it while a subscriber is away. Production
brokers need the same two settings (README, "Broker settings").
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def mosquitto_conf(port: int, data_dir: Path, listener_options: Sequence[str] = ()) -> str:
    """Text of a mosquitto.conf for a loopback broker with durable sessions.

    `listener_options` replace anonymous access (e.g. TLS files, a password file).
    """
    access = list(listener_options) or ["allow_anonymous true"]
    return "\n".join(
        [
            f"listener {port} 127.0.0.1",
            *access,
            "persistence true",
            f"persistence_location {data_dir}/",
            "autosave_interval 5",
            "max_queued_messages 0",
            "max_queued_bytes 0",
            "max_inflight_messages 0",
            "set_tcp_nodelay true",
            f"log_dest file {data_dir}/mosquitto.log",
            # Started as root, mosquitto drops to the `mosquitto` user, which cannot write a
            # data dir under a private temp dir: its persistence would silently go nowhere.
            # This broker only listens on loopback; the caller is root already.
            *(["user root"] if os.geteuid() == 0 else []),
            "log_type error",
            "log_type warning",
            "",
        ]
    )


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary (Debian installs it in /usr/sbin)."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def port_open(host: str, port: int) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class LocalBroker:
    """A mosquitto process on 127.0.0.1:port with its data in `data_dir`."""

    def __init__(self, port: int, data_dir: Path, listener_options: Sequence[str] = ()) -> None:
        self.port = port
        self.data_dir = data_dir
        self.listener_options = list(listener_options)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start mosquitto and wait until it accepts connections.

        Raises
        ------
        RuntimeError
            mosquitto is not installed or did not come up (with the reason).
        """
        binary = find_mosquitto()
        if binary is None:
            raise RuntimeError(
                "no MQTT broker configured and mosquitto is not installed: "
                "install Debian's `mosquitto` or set mqtt.host (GRIDCOORD_MQTT__HOST)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(
            mosquitto_conf(self.port, self.data_dir.resolve(), self.listener_options),
            encoding="utf-8",
        )
        self._process = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = (
                    self._process.stderr.read().decode(errors="replace")
                    if self._process.stderr
                    else ""
                )
                raise RuntimeError(f"mosquitto exited at start: {err.strip()[:300]}")
            if port_open("127.0.0.1", self.port):
                return
            time.sleep(0.05)  # polling a port with a deadline: no event to await
        raise RuntimeError(f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (mosquitto saves its persistence file), then wait."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
