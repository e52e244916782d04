"""Secrets: read from private files, refused in the YAML file, never shown (issue 15, item 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from gridcoord.config import Config, load_config
from gridcoord.config_errors import ConfigError
from gridcoord.config_secrets import FILE_SUFFIX, secret_fields

SECRET = "s3cr3t-4b1e9d-must-not-leak"
CITY = "assets:\n  - {id: meter-0001, kind: meter, rated_kw: 30}\n"


def gridcoord(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GRIDCOORD_")}
    return subprocess.run(
        [sys.executable, "-m", "gridcoord", *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
    )


def secret_file(tmp_path: Path, mode: int, content: str = SECRET + "\n") -> Path:
    path = tmp_path / f"secret-{mode:o}"
    path.write_text(content, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.fixture
def city(tmp_path: Path) -> Path:
    path = tmp_path / "city.yaml"
    path.write_text(CITY, encoding="utf-8")
    return path


def test_every_secret_setting_has_a_file_sibling() -> None:
    """A secret added later (an API token) gets the same treatment or this fails."""
    fields = set(secret_fields(Config))
    assert {("mqtt", "password"), ("influxdb", "token"), ("influxdb", "password")} <= fields
    for section, name in fields:
        model = Config.model_fields[section].annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        assert name + FILE_SUFFIX in model.model_fields, f"{section}.{name} has no _file"


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_secrets_come_from_private_files(
    tmp_path: Path, city: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    monkeypatch.setenv("GRIDCOORD_MQTT__PASSWORD_FILE", str(secret_file(tmp_path, mode)))
    token = tmp_path / "token"
    token.write_text("tok-" + SECRET, encoding="utf-8")  # no trailing newline
    token.chmod(0o600)
    link = tmp_path / "token-link"  # Kubernetes mounts secrets as symlinks
    link.symlink_to(token)
    city.write_text(CITY + f"influxdb:\n  token_file: {link}\n", encoding="utf-8")
    config = load_config(city)
    assert config.mqtt.password == SecretStr(SECRET)  # one trailing newline dropped
    assert config.influxdb.token == SecretStr("tok-" + SECRET)
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660, 0o601])
@pytest.mark.parametrize("command", ["check-config", "run"])
def test_a_secret_file_others_can_access_is_refused(
    tmp_path: Path, city: Path, mode: int, command: str
) -> None:
    path = secret_file(tmp_path, mode)
    argv = ["check-config", str(city)] if command == "check-config" else ["run", "-c", str(city)]
    result = gridcoord(*argv, env={"GRIDCOORD_MQTT__PASSWORD_FILE": str(path)})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "mqtt.password_file (from GRIDCOORD_MQTT__PASSWORD_FILE)" in result.stderr
    assert f"mode {mode:04o} lets group or others access it" in result.stderr
    assert str(path) in result.stderr and str(city) in result.stderr
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "missing", "cannot read file: No such file or directory"),
        (lambda d: secret_file(d, 0o600, "\n"), "the file is empty"),
        (lambda d: secret_file(d, 0o600, "x" * 70_000), "larger than 65536 bytes"),
        (lambda d: Path("/dev/zero"), "not a regular file"),
    ],
    ids=["missing", "empty", "huge", "device"],
)
def test_unusable_secret_files_are_refused(
    tmp_path: Path, city: Path, monkeypatch: pytest.MonkeyPatch, make: object, expected: str
) -> None:
    assert callable(make)
    monkeypatch.setenv("GRIDCOORD_INFLUXDB__PASSWORD_FILE", str(make(tmp_path)))
    with pytest.raises(ConfigError) as caught:
        load_config(city)
    report = caught.value.report()
    assert "influxdb.password_file (from GRIDCOORD_INFLUXDB__PASSWORD_FILE)" in report
    assert expected in report


def test_a_fifo_as_secret_file_is_refused_without_hanging(
    tmp_path: Path, city: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    monkeypatch.setenv("GRIDCOORD_MQTT__PASSWORD_FILE", str(fifo))
    with pytest.raises(ConfigError) as caught:
        load_config(city)
    assert "not a regular file" in caught.value.report()


def test_a_secret_twice_is_ambiguous(
    tmp_path: Path, city: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDCOORD_MQTT__PASSWORD_FILE", str(secret_file(tmp_path, 0o600)))
    monkeypatch.setenv("GRIDCOORD_MQTT__PASSWORD", "other-" + SECRET)
    with pytest.raises(ConfigError) as caught:
        load_config(city)
    report = caught.value.report()
    assert "set either GRIDCOORD_MQTT__PASSWORD or this file, not both" in report
    assert SECRET not in report


@pytest.mark.parametrize(
    ("section", "name"), [("mqtt", "password"), ("influxdb", "token"), ("influxdb", "password")]
)
@pytest.mark.parametrize("command", ["check-config", "run"])
def test_a_secret_written_into_the_yaml_is_refused(
    city: Path, section: str, name: str, command: str
) -> None:
    city.write_text(CITY + f"{section}:\n  {name}: {SECRET}\n", encoding="utf-8")
    argv = ["check-config", str(city)] if command == "check-config" else ["run", "-c", str(city)]
    result = gridcoord(*argv, env={})
    assert result.returncode == 2, result.stderr
    assert f"{section}.{name} (line 4): a secret must not be written" in result.stderr
    assert f"GRIDCOORD_{section.upper()}__{name.upper()}_FILE" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_secrets_never_appear_in_any_config_error(
    tmp_path: Path, city: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wrong types, JSON sections and bad values around secrets: the text is never echoed."""
    cases = [
        {"GRIDCOORD_MQTT": '{"password": "' + SECRET + '", "port": "x"}'},
        {"GRIDCOORD_MQTT": '{"password": "' + SECRET + '", '},  # broken JSON
        {"GRIDCOORD_INFLUXDB__URL": f"http://user:{SECRET}@influx:8086"},
        {"GRIDCOORD_MQTT__PASSWORD": SECRET, "GRIDCOORD_MQTT__PORT": SECRET},
        {"GRIDCOORD_INFLUXDB__TOKEN": SECRET, "GRIDCOORD_INFLUXDB__API": SECRET},
    ]
    for env in cases:
        with monkeypatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            with pytest.raises(ConfigError) as caught:
                load_config(city)
        assert SECRET not in caught.value.report(), env


@pytest.mark.parametrize("section", ["mqtt", "ocpp"])
def test_a_tls_private_key_others_may_read_is_refused_by_check_config(
    tmp_path: Path, section: str
) -> None:
    key = tmp_path / "client.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n", encoding="utf-8")
    cert = tmp_path / "client.crt"
    cert.write_text("", encoding="utf-8")
    tls = f"{{key_file: {key}, cert_file: {cert}}}"
    extra = "\n  credentials_file: creds.csv" if section == "ocpp" else ""
    config = tmp_path / "city.yaml"
    config.write_text(f"{CITY}{section}:\n  tls: {tls}{extra}\n", encoding="utf-8")
    key.chmod(0o644)
    refused = gridcoord("check-config", str(config), env={})
    assert refused.returncode == 2
    assert f"{section}.tls.key_file" in refused.stderr and "chmod 600" in refused.stderr
    assert "PRIVATE KEY" not in refused.stderr
    key.chmod(0o600)
    assert gridcoord("check-config", str(config), env={}).returncode == 0
