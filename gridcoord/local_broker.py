"""A loopback Mosquitto for `gridcoord run` without a configured broker, for the demo and tests.

It listens on 127.0.0.1 only and is as closed as a production broker: no anonymous access, a
password file and an ACL generated from the asset list (`gridcoord.broker`), credentials kept
in its data directory (`device-credentials.csv`, `service-credentials.csv`, mode 0600). Its
durability settings are the production ones (`gridcoord.broker.conf`): persistence saved after
every few changes, no cap on messages queued for an absent gridcoord.
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
from typing import TYPE_CHECKING

from gridcoord.broker.conf import Listener, mosquitto_conf
from gridcoord.broker.files import Accounts, accounts_for, write_access_files

if TYPE_CHECKING:
    from gridcoord.config import Config

log = logging.getLogger(__name__)


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
    """A mosquitto process on 127.0.0.1:port with its files and data in `data_dir`.

    Parameters
    ----------
    port
        TCP port on 127.0.0.1.
    data_dir
        configuration, password and ACL files, persistence and log.
    accounts
        who may log in and do what (`for_config` derives them from a deployment).
    listener_options
        extra lines for the listener (TLS files, `require_certificate`).
    """

    def __init__(
        self,
        port: int,
        data_dir: Path,
        accounts: Accounts,
        listener_options: Sequence[str] = (),
    ) -> None:
        self.port = port
        self.data_dir = data_dir
        self.accounts = accounts
        self.listener_options = tuple(listener_options)
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def for_config(cls, port: int, data_dir: Path, config: Config) -> LocalBroker:
        """The broker for one deployment: its accounts, credentials kept in `data_dir`.

        Raises
        ------
        ValueError
            the asset list cannot become broker accounts (named field or file).
        """
        return cls(port, data_dir, accounts_for(config, data_dir))

    def conf_text(self) -> str:
        """Text of the mosquitto.conf this broker runs with."""
        data = self.data_dir.resolve()
        return mosquitto_conf(
            listeners=[Listener(self.port, "127.0.0.1", self.listener_options)],
            passwd=data / "passwd",
            acl=data / "acl",
            data_dir=data,
            log_dest=f"file {data}/mosquitto.log",
            pid_file=data / "mosquitto.pid",
            # Started as root, mosquitto drops to the `mosquitto` user, which cannot write a
            # data dir under a private temp dir: its persistence would silently go nowhere.
            # This broker only listens on loopback; the caller is root already.
            extra=["user root"] if os.geteuid() == 0 else [],
        )

    def start(self, timeout: float = 10.0) -> None:
        """Write the files, start mosquitto and wait until it accepts connections.

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
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_access_files(self.accounts, self.data_dir)
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(self.conf_text(), encoding="utf-8")
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

    def kill(self) -> None:
        """SIGKILL: a crash, with no last save of the persistence file."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
