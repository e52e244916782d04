"""The generated passwords: `device-credentials.csv` and `service-credentials.csv`, 0600.

Kept across runs (a device keeps working after the asset list grows) unless rotated. Files are
written atomically with mode 0600 from the start, never readable by others for a moment.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from gridcoord.broker.passwd import generate_password

DEVICE_FILE = "device-credentials.csv"
SERVICE_FILE = "service-credentials.csv"
DEVICE_HEADER = ("asset_id", "username", "password")
SERVICE_HEADER = ("username", "password")
# A credentials file of a city with 100,000 devices is about 7 MB; refuse anything far larger.
MAX_FILE_BYTES = 64 * 1024 * 1024


class CredentialsError(ValueError):
    """A credentials file that is unreadable or malformed (named in the message)."""


def read_csv(path: Path, header: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Rows of a credentials file without its header; [] if the file does not exist."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CredentialsError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != header:
        raise CredentialsError(f"{path}: first line must be {','.join(header)}")
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header) or not all(row):
            raise CredentialsError(f"{path}: line {number} must have {len(header)} fields")
    return [tuple(row) for row in rows[1:]]


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace `path` atomically with `text`, created with `mode` (default owner-only)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
        out.write(text)
    os.replace(temporary, path)


def csv_text(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """CSV with a header line and Unix line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def device_passwords(path: Path, asset_ids: list[str], *, rotate: bool) -> dict[str, str]:
    """Asset id → password: the kept one from `path` (unless `rotate`), else a new one.

    Assets no longer configured are dropped; the file is rewritten with exactly `asset_ids`.
    """
    kept = {} if rotate else {row[0]: row[2] for row in read_csv(path, DEVICE_HEADER)}
    passwords = {asset_id: kept.get(asset_id) or generate_password() for asset_id in asset_ids}
    rows = [(asset_id, asset_id, passwords[asset_id]) for asset_id in asset_ids]
    write_private(path, csv_text(DEVICE_HEADER, rows))
    return passwords


def service_passwords(
    path: Path, given: Mapping[str, str | None], *, rotate: bool
) -> dict[str, str]:
    """Username → password for the service accounts.

    A password `given` (from the environment) is used as is and never written to disk; an
    absent one is kept from `path` or generated there. `path` holds only generated ones.
    """
    kept: dict[str, str] = {}
    if not rotate:
        kept = {row[0]: row[1] for row in read_csv(path, SERVICE_HEADER)}
    passwords: dict[str, str] = {}
    generated: list[tuple[str, ...]] = []
    for name, password in given.items():
        if password:
            passwords[name] = password
        else:
            passwords[name] = kept.get(name) or generate_password()
            generated.append((name, passwords[name]))
    if generated:
        write_private(path, csv_text(SERVICE_HEADER, generated))
    else:
        path.unlink(missing_ok=True)
    return passwords
