"""The station credentials file: created 0600 when absent, refused when others may read it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from adapters.ocpp.credentials import CredentialsError, load_credentials


def test_absent_file_is_created_private_with_a_password_per_station(tmp_path: Path) -> None:
    path = tmp_path / "var" / "ocpp.csv"
    credentials = load_credentials(path, ["cs-2", "cs-1"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert lines[0] == "station_id,password" and [line.split(",")[0] for line in lines[1:]] == [
        "cs-1",
        "cs-2",
    ]
    password = lines[1].split(",")[1]
    assert len(password) >= 16 and credentials.check("cs-1", password)
    assert not credentials.check("cs-2", password) and not credentials.check("cs-9", password)
    assert load_credentials(path, ["cs-1"]).check("cs-1", password)  # kept, not rotated


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644])
def test_a_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "ocpp.csv"
    path.write_text("cs-1," + "s" * 20 + "\n")
    path.chmod(mode)
    with pytest.raises(CredentialsError, match="chmod 600") as refused:
        load_credentials(path, ["cs-1"])
    assert str(path) in str(refused.value) and "s" * 20 not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("cs-1\n", "line 1: expected"),
        ("station_id,password\ncs-1,short\n", "line 2: the password of 'cs-1' must be 16"),
        ("cs-1," + "a" * 20 + "\ncs-1," + "b" * 20 + "\n", "line 2: 'cs-1' appears twice"),
        ("cs-1," + "a" * 20 + ",extra\n", "line 1: expected"),
    ],
)
def test_malformed_lines_are_named(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "ocpp.csv"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(CredentialsError, match=problem):
        load_credentials(path, [])
