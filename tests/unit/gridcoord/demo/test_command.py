"""`gridcoord demo` without a mosquitto binary says what to install and exits 1."""

from __future__ import annotations

import pytest

from gridcoord.demo import command


def test_without_mosquitto_the_demo_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(command, "find_mosquitto", lambda: None)  # no binary on this machine
    assert command.demo_command(hours=0.5, speed=0.0, json_output=False) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "MQTT 5" in err and "apt-get install mosquitto" in err and "Traceback" not in err
