"""Token verification (argon2 hashes, roles) and the readiness verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from gridcoord.api.auth import TokenConfigError, TokenRegistry, new_token
from gridcoord.api.readiness import readiness
from gridcoord.api.view import Health
from gridcoord.config import Api, Role

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def test_tokens_verify_to_their_role_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "admin.hash").write_text(FAST.hash("a-secret") + "\n")
    api = Api.model_validate(
        {
            "tokens": [
                {"name": "op-1", "role": "operator", "hash": FAST.hash("o-secret")},
                {"name": "admin-1", "role": "admin", "hash_file": str(tmp_path / "admin.hash")},
            ]
        }
    )
    registry = TokenRegistry(api)
    op = registry.verify("o-secret")
    assert op is not None and (op.name, op.role) == ("op-1", Role.OPERATOR)
    assert registry.cached("o-secret") == op
    admin = registry.verify("a-secret")
    assert admin is not None and admin.role is Role.ADMIN
    assert registry.verify("wrong") is None
    assert registry.verify("") is None
    assert registry.verify("x" * 10_000) is None
    assert registry.anonymous is None


def test_a_made_token_verifies_against_its_hash() -> None:
    token, encoded = new_token()
    api = Api.model_validate({"tokens": [{"name": "v-1", "role": "viewer", "hash": encoded}]})
    assert TokenRegistry(api).verify(token) is not None


def test_bad_hash_config_names_the_token_not_the_hash(tmp_path: Path) -> None:
    plain = Api.model_validate({"tokens": [{"name": "v-1", "role": "viewer", "hash": "hunter2"}]})
    with pytest.raises(TokenConfigError, match="'v-1'") as info:
        TokenRegistry(plain)
    assert "hunter2" not in str(info.value)
    missing = Api.model_validate(
        {"tokens": [{"name": "v-2", "role": "viewer", "hash_file": str(tmp_path / "nope")}]}
    )
    with pytest.raises(TokenConfigError, match="'v-2'"):
        TokenRegistry(missing)


def test_a_token_needs_exactly_one_hash_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Api.model_validate({"tokens": [{"name": "v-1", "role": "viewer"}]})


def health(**changes: object) -> Health:
    values: dict[str, object] = {
        "broker_connected": True,
        "store_writable": True,
        "spooling": False,
        "spool_full": False,
        "spool_bytes": 0,
        "planning_enabled": True,
        "last_plan_at": NOW - timedelta(minutes=5),
        "plan_interval_s": 900.0,
        "started_at": NOW - timedelta(hours=1),
    }
    values.update(changes)
    return Health.model_validate(values)


def test_ready_when_everything_is_ok_and_spooling_counts_as_ok() -> None:
    assert readiness(health(), NOW)[0]
    assert readiness(health(store_writable=False, spooling=True), NOW)[0]
    assert readiness(health(planning_enabled=False, last_plan_at=None), NOW)[0]


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"broker_connected": False}, "broker"),
        ({"spooling": True, "store_writable": False, "spool_full": True}, "store"),
        ({"store_writable": False}, "store"),
        ({"last_plan_at": None}, "plan"),
        ({"last_plan_at": NOW - timedelta(minutes=31)}, "plan"),
    ],
)
def test_not_ready(changes: dict[str, object], check: str) -> None:
    ok, checks = readiness(health(**changes), NOW)
    assert not ok
    assert checks[check] != "ok"
