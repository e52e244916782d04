"""Write a broker directory from a configuration: passwd, acl, mosquitto.conf, credentials.

`gridcoord broker-config` calls `write_broker_dir` for a production broker; the loopback broker
of `gridcoord run` and `gridcoord demo` (`gridcoord.local_broker`) takes `accounts_for` its data
directory and writes its own `mosquitto.conf` with `write_access_files` beside it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from gridcoord.broker.acl import (
    FORECASTER_USER,
    OPERATOR_USER,
    SERVICE_USER,
    BrokerUser,
    acl_text,
    broker_users,
)
from gridcoord.broker.conf import Listener, mosquitto_conf
from gridcoord.broker.credentials import (
    DEVICE_FILE,
    SERVICE_FILE,
    device_passwords,
    service_passwords,
    write_private,
)
from gridcoord.broker.passwd import passwd_text

if TYPE_CHECKING:
    from gridcoord.config import Config

# Service passwords, when they are not to be generated into service-credentials.csv.
OPERATOR_PASSWORD_ENV = "GRIDCOORD_BROKER_OPERATOR_PASSWORD"
FORECASTER_PASSWORD_ENV = "GRIDCOORD_BROKER_FORECASTER_PASSWORD"
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Accounts:
    """Broker accounts, what each may do, and their clear-text passwords (kept 0600)."""

    users: tuple[BrokerUser, ...]
    passwords: dict[str, str]
    service_user: str = SERVICE_USER

    @property
    def service_password(self) -> str:
        """Gridcoord's own password."""
        return self.passwords[self.service_user]

    def password(self, username: str) -> str:
        """The password of one account (tests and the demo's devices log in with it)."""
        return self.passwords[username]


def service_username(config: Config) -> str:
    """Gridcoord's own broker account: `mqtt.username`, else `gridcoord`.

    Raises
    ------
    ValueError
        The name cannot be a Mosquitto user name (`:` or whitespace in it).
    """
    name = config.mqtt.username or SERVICE_USER
    if not USERNAME_RE.match(name):
        raise ValueError(f"mqtt.username: {name!r} must match {USERNAME_RE.pattern}")
    return name


def accounts_for(config: Config, directory: Path, *, rotate: bool = False) -> Accounts:
    """The configuration's broker accounts with their passwords, kept in `directory`.

    Device passwords are kept in (or generated into) `device-credentials.csv`, service
    passwords come from the environment (`GRIDCOORD_MQTT__PASSWORD`,
    `GRIDCOORD_BROKER_OPERATOR_PASSWORD`) or are kept in / generated into
    `service-credentials.csv`; both files mode 0600.

    Raises
    ------
    ValueError
        The asset list cannot become broker accounts (`AccessError`), or a credentials file
        is malformed (`CredentialsError`); the message names the field or file.
    """
    service_user = service_username(config)
    users = broker_users(config, service_user=service_user)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    devices = [user.name for user in users if user.device]
    passwords = device_passwords(directory / DEVICE_FILE, devices, rotate=rotate)
    given = {
        service_user: config.mqtt.password.get_secret_value() if config.mqtt.password else None,
        OPERATOR_USER: os.environ.get(OPERATOR_PASSWORD_ENV) or None,
        FORECASTER_USER: os.environ.get(FORECASTER_PASSWORD_ENV) or None,
    }
    passwords |= service_passwords(directory / SERVICE_FILE, given, rotate=rotate)
    return Accounts(tuple(users), passwords, service_user)


def write_access_files(accounts: Accounts, directory: Path) -> None:
    """`passwd` (hashed) and `acl` for these accounts, mode 0640 (the broker's group reads)."""
    write_private(directory / "passwd", passwd_text(accounts.passwords), 0o640)
    write_private(directory / "acl", acl_text(accounts.users), 0o640)


def write_broker_dir(
    config: Config,
    directory: Path,
    *,
    listeners: Sequence[Listener],
    broker_dir: PurePath | None = None,
    data_dir: PurePath | None = None,
    rotate: bool = False,
    header: Sequence[str] = (),
) -> Accounts:
    """Write `passwd`, `acl`, `mosquitto.conf` and the credentials files into `directory`.

    Parameters
    ----------
    config
        The deployment; its MQTT-read assets become device accounts.
    directory
        Where the files go (created, mode 0700).
    listeners
        The broker's listeners.
    broker_dir
        `directory` as the broker sees it (a container mount); `directory` itself by default.
    data_dir
        The broker's persistence directory as it sees it; `broker_dir/data` by default.
    rotate
        New passwords for every generated account instead of the kept ones.
    header
        Comment lines at the top of `mosquitto.conf`.

    Raises
    ------
    ValueError
        As `accounts_for`.
    """
    accounts = accounts_for(config, directory, rotate=rotate)
    write_access_files(accounts, directory)
    seen = broker_dir if broker_dir is not None else directory.resolve()
    conf = mosquitto_conf(
        listeners=listeners,
        passwd=seen / "passwd",
        acl=seen / "acl",
        data_dir=data_dir if data_dir is not None else seen / "data",
        header=header,
    )
    write_private(directory / "mosquitto.conf", conf, 0o644)
    return accounts
