"""Station passwords (OCPP security profiles 1 and 2): a CSV `station_id,password`, mode 0600.

The file is refused when group or others may read or write it, and created with fresh random
passwords for the configured stations when it does not exist (so the example city runs without
a secret in git). Passwords never appear in a log or an error message.
"""

from __future__ import annotations

import csv
import hmac
import io
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

MAX_FILE_BYTES = 4 * 1024 * 1024
MIN_PASSWORD_LENGTH = 16  # OCPP 2.0.1 security profile 1: 16 to 40 characters (A00.FR.303)
MAX_PASSWORD_LENGTH = 40


class CredentialsError(Exception):
    """The credentials file cannot be used; the message names the file and the line."""


class Credentials:
    """Station id → password, compared in constant time."""

    def __init__(self, passwords: Mapping[str, str]) -> None:
        self._passwords = dict(passwords)

    def __contains__(self, station_id: object) -> bool:
        """Whether the station has a password."""
        return station_id in self._passwords

    def check(self, station_id: str, password: str) -> bool:
        """Whether `password` is the station's (False for an unknown station)."""
        expected = self._passwords.get(station_id)
        if expected is None:
            # Compare anyway so an unknown id takes as long as a wrong password.
            hmac.compare_digest(password.encode(), b"x" * MIN_PASSWORD_LENGTH)
            return False
        return hmac.compare_digest(password.encode(), expected.encode())

    def station_ids(self) -> frozenset[str]:
        """The stations that have a password."""
        return frozenset(self._passwords)


def load_credentials(path: Path, stations: Iterable[str]) -> Credentials:
    """Read the file (creating it for `stations` when it is absent).

    Parameters
    ----------
    path : Path
        The CSV file.
    stations : iterable of str
        The configured station ids; a new file gets one random password for each.

    Raises
    ------
    CredentialsError
        Unreadable, too permissive, malformed (naming the line), or too large.
    """
    if not path.exists():
        return _create(path, sorted(set(stations)))
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise CredentialsError(f"{path}: cannot read ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"{path}: readable or writable by group or others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CredentialsError(f"{path}: cannot read ({exc.strerror})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise CredentialsError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialsError(f"{path}: not UTF-8 text") from None
    return Credentials(_parse(text, path))


def _parse(text: str, path: Path) -> dict[str, str]:
    passwords: dict[str, str] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or row[0].startswith("#") or (number == 1 and row[0] == "station_id"):
            continue
        if len(row) != 2 or not row[0] or not row[1]:
            raise CredentialsError(f"{path}, line {number}: expected `station_id,password`")
        station_id, password = row[0].strip(), row[1]
        if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
            raise CredentialsError(
                f"{path}, line {number}: the password of {station_id!r} must be "
                f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
            )
        if station_id in passwords:
            raise CredentialsError(f"{path}, line {number}: {station_id!r} appears twice")
        passwords[station_id] = password
    return passwords


def _create(path: Path, stations: list[str]) -> Credentials:
    passwords = {s: secrets.token_urlsafe(24) for s in stations}  # 32 characters
    lines = ["station_id,password"] + [f"{s},{p}" for s, p in passwords.items()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never overwrite a file that appeared meanwhile; 0600 from the first byte.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    except OSError as exc:
        raise CredentialsError(f"{path}: cannot create ({exc.strerror})") from None
    return Credentials(passwords)
