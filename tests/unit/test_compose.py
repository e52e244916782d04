"""docker-compose.yml against the repository it ships in (no Docker engine needed).

`gridcoord broker-config` runs into a temporary directory: every file compose mounts exists in
the repository or is one that command writes (and git ignores). Health checks call endpoints
that exist (the API's routes, the broker's operator account), every dependency waits for its
health, only the broker is published beyond loopback, the mounted production config passes
`gridcoord check-config`, and Debian's `docker-compose` (v1, Python) validates the file with
the variables of `.env.example`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any, cast

import pytest
import yaml

from gridcoord.api.app import create_app
from gridcoord.api.auth import TokenRegistry
from gridcoord.api.context import ApiContext
from gridcoord.broker.acl import OPERATOR_USER
from gridcoord.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = {
    "GRIDCOORD_MQTT__PASSWORD": "test-service-pw",
    "GRIDCOORD_BROKER_OPERATOR_PASSWORD": "test-operator-pw",
}


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; compose files must not have any."""


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(k) for k, _ in node.value]
    duplicates = {k for k in keys if keys.count(k) > 1}
    assert not duplicates, f"duplicate keys {duplicates} at line {node.start_mark.line + 1}"
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def compose() -> dict[str, Any]:
    data = yaml.load((ROOT / "docker-compose.yml").read_text(), Loader=_UniqueKeyLoader)
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return cast(dict[str, dict[str, Any]], compose()["services"])


def default(value: str) -> str:
    """``${NAME:-fallback}`` → fallback (what compose uses when .env leaves NAME unset)."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source in the repository, target in the container) of each bind mount."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = default(str(volume)).split(":")[:2]
        if source.startswith("./"):
            mounts.append((source[2:], target))
    return mounts


def stack_config_path() -> Path:
    (source,) = [s for s, t in bind_mounts(services()["gridcoord"]) if t.startswith("/etc/")]
    return ROOT / source


def stack_config() -> Config:
    return load_config(stack_config_path())


@pytest.fixture(scope="module")
def broker_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The names `gridcoord broker-config` writes for the stack's city."""
    out = tmp_path_factory.mktemp("broker") / "mosquitto"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridcoord",
            "broker-config",
            "--config",
            str(stack_config_path()),
            "--out",
            str(out),
            "--broker-dir",
            "/mosquitto/config",
            "--data-dir",
            "/mosquitto/data",
        ],
        env={**os.environ, **PASSWORDS},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "mosquitto.conf").read_text() == (
        ROOT / "config/mosquitto/mosquitto.conf"
    ).read_text(), "config/mosquitto/mosquitto.conf drifted: run `make broker-config`"
    passwd = (out / "passwd").read_text()
    assert re.search(rf"^{OPERATOR_USER}:", passwd, re.M), "no operator account for the check"
    operator = (out / "acl").read_text().split(f"user {OPERATOR_USER}\n", 1)[1].split("\n\n")[0]
    assert "topic read $SYS/#" in operator.splitlines()
    return {p.name for p in out.iterdir()}


def test_no_duplicate_keys_and_the_services() -> None:
    assert set(services()) == {"mosquitto", "influxdb", "grafana", "gridcoord"}


def test_every_mounted_file_exists_or_comes_from_broker_config(broker_files: set[str]) -> None:
    generated_dir = "config/mosquitto/"
    ignored = (ROOT / generated_dir / ".gitignore").read_text().split()
    for name, service in services().items():
        for source, target in bind_mounts(service):
            path = ROOT / source
            if source.startswith(generated_dir) and not path.exists():
                file = source.removeprefix(generated_dir)
                assert file in broker_files, f"{name}: {source} is neither here nor generated"
                assert file in ignored, f"{source} is generated: git must ignore it"
                continue
            assert path.exists(), f"{name}: {source} is mounted at {target} but missing"


def test_the_broker_reads_the_files_it_is_given(broker_files: set[str]) -> None:
    conf = (ROOT / "config/mosquitto/mosquitto.conf").read_text()
    mounted = {target: source for source, target in bind_mounts(services()["mosquitto"])}
    for key in ("password_file", "acl_file"):
        found = re.search(rf"^{key} (\S+)$", conf, re.M)
        assert found, key
        assert found.group(1) in mounted, f"{key} {found.group(1)} is not mounted"
        assert PurePosixPath(mounted[found.group(1)]).name in broker_files


def test_influxdb_init_scripts_run_and_grafana_reads_the_token_they_write() -> None:
    influx = services()["influxdb"]
    (init,) = [s for s, t in bind_mounts(influx) if t == "/docker-entrypoint-initdb.d"]
    scripts = sorted((ROOT / init).glob("*.sh"))
    assert scripts
    for script in scripts:  # the image runs them with run-parts: executable, *.sh
        assert os.access(script, os.X_OK), f"{script} is not executable"
        text = script.read_text()
        subprocess.run(["bash", "-n", str(script)], check=True)
    token_dir = next(str(v).split(":")[1] for v in influx["volumes"] if "tokens" in str(v))
    written = re.search(rf"{re.escape(token_dir)}/([\w.-]+)", text)
    assert written, "the init script writes no token where the volume is"
    grafana_mount = next(
        str(v).split(":")[1] for v in services()["grafana"]["volumes"] if "tokens" in str(v)
    )
    datasource = (ROOT / "config/grafana/provisioning/datasources/influxdb.yaml").read_text()
    assert f"$__file{{{grafana_mount}/{written.group(1)}}}" in datasource
    # The variables the script needs are given to the container.
    for variable in re.findall(r"\$\{(GRIDCOORD_\w+):\?", text):
        assert variable in influx["environment"], variable


def test_healthchecks_call_endpoints_that_exist() -> None:
    config = stack_config()
    app = create_app(cast(ApiContext, None), TokenRegistry(config.api))
    routes = {getattr(r, "path", "") for r in app.routes}
    checks = {name: str(s.get("healthcheck", {}).get("test")) for name, s in services().items()}
    assert all(checks.values()), checks
    for text in (checks["gridcoord"], (ROOT / "Dockerfile").read_text()):
        (url,) = re.findall(r"http://127\.0\.0\.1:(\d+)(/[\w/]+)", text)
        assert int(url[0]) == config.api.port and url[1] in routes, url
    assert "/health/ready" in checks["gridcoord"]
    # The broker's check logs in as the read-only operator with the password it is given.
    mosquitto = services()["mosquitto"]
    assert f"-u {OPERATOR_USER}" in checks["mosquitto"]
    assert "GRIDCOORD_BROKER_OPERATOR_PASSWORD" in mosquitto["environment"]
    assert "http://127.0.0.1:3000/api/health" in checks["grafana"]  # Grafana's health API
    assert "influx" in checks["influxdb"] and "ping" in checks["influxdb"]


def test_dependencies_wait_for_health() -> None:
    all_services = services()
    assert all_services["gridcoord"]["depends_on"].keys() == {"mosquitto", "influxdb"}
    for name, service in all_services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for other, condition in depends.items():
            assert "healthcheck" in all_services[other], other
            assert condition == {"condition": "service_healthy"}, (name, other)


def test_only_the_broker_listens_beyond_loopback() -> None:
    config = stack_config()
    assert config.ocpp is not None
    published: dict[str, set[str]] = {}
    for name, service in services().items():
        for port in service.get("ports", []):
            published.setdefault(name, set()).add(str(port))
    listener = re.search(
        r"^listener (\d+)", (ROOT / "config/mosquitto/mosquitto.conf").read_text(), re.M
    )
    assert listener
    assert published.pop("mosquitto") == {f"{listener.group(1)}:{listener.group(1)}"}
    assert published.pop("gridcoord") == {
        f"127.0.0.1:{config.api.port}:{config.api.port}",
        f"127.0.0.1:{config.ocpp.port}:{config.ocpp.port}",
    }
    for name, ports in published.items():
        assert all(p.startswith("127.0.0.1:") for p in ports), (name, ports)


def test_the_production_config_checks_and_has_no_loopback_devices() -> None:
    path = stack_config_path()
    result = subprocess.run(
        [sys.executable, "-m", "gridcoord", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = stack_config()
    assert path.name == "production.example.yaml"
    loopback = [
        a.id
        for a in config.assets
        if a.modbus is not None and a.modbus.host in ("127.0.0.1", "localhost", "::1")
    ]
    assert not loopback, f"the demo's simulated Modbus devices: {loopback}"
    assert config.mqtt.host == "mosquitto" and "//influxdb:" in config.influxdb.url
    assert config.api.anonymous_role is None, "production needs a token for every request"
    assert config.storage.kind == "influxdb"


def test_every_variable_has_an_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{(\w+)", text))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*(\w+)=", example, re.M))
    assert used <= documented, used - documented
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        found = re.match(r"^(\w+)=(.*)$", line)
        if found:
            values[found.group(1)] = found.group(2)
    return values


def test_docker_compose_config_validates() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: run `make test` (installs it as root)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRIDCOORD_", "INFLUX"))}
    result = subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        env={**env, **env_example()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # And a missing secret is refused by name (the `:?` guards), not started empty.
    without = {**env, **env_example()}
    del without["GRIDCOORD_INFLUXDB__PASSWORD"]
    refused = subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        env=without,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and "GRIDCOORD_INFLUXDB__PASSWORD" in refused.stderr
