"""docker-compose.yml: every file it mounts exists; only the broker is published beyond loopback;
each service with a health check is waited for by those that depend on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, dict[str, dict[str, object]]]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.xfail(
    strict=True,
    reason="config/mosquitto/passwd and acl are to come from `gridcoord broker-config` "
    "(the hardening issue); strict: this fails once they exist, to be turned on then",
)
def test_every_mounted_file_exists() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):  # type: ignore[attr-defined]
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} is mounted but missing"


def test_only_the_broker_listens_beyond_loopback() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):  # type: ignore[attr-defined]
            if name != "mosquitto":
                assert str(port).startswith("127.0.0.1:"), (name, port)


def test_dependencies_wait_for_health() -> None:
    services = compose()["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for other, condition in depends.items():
            if "healthcheck" in services[other]:
                assert condition == {"condition": "service_healthy"}, (name, other)
    assert "/health/ready" in str(services["gridcoord"]["healthcheck"])
