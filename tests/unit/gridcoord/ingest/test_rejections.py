"""Rejection accounting: every rejection counted, notices rate-limited, contract payload."""

from __future__ import annotations

import json

from adapters.contract.validation import Reason
from gridcoord.ingest.rejections import RejectionReporter


def test_counts_everything_publishes_within_budget() -> None:
    sent: list[tuple[str, bytes]] = []
    reporter = RejectionReporter(lambda t, p: sent.append((t, p)), "gridcoord", per_second=10)
    for _ in range(100):
        reporter.reject(
            "pv-0001",
            Reason.INVALID_JSON,
            "payload is not valid JSON",
            "gridcoord/telemetry/pv-0001",
        )
    reporter.reject("_unknown", Reason.UNKNOWN_ASSET, "no asset", "x" * 1000)
    assert reporter.counts() == {"invalid_json": 100, "unknown_asset": 1}
    assert 10 <= len(sent) <= 11  # a burst of the budget (refill during the loop may add one)
    assert reporter.suppressed == 101 - len(sent)
    topic, payload = sent[0]
    assert topic == "gridcoord/rejected/pv-0001"
    assert json.loads(payload) == {
        "reason": "invalid_json",
        "topic": "gridcoord/telemetry/pv-0001",
        "detail": "payload is not valid JSON",
    }


def test_without_a_broker_still_counts() -> None:
    reporter = RejectionReporter(None, "gridcoord")
    reporter.reject("charger-001", Reason.TIMEOUT, "no answer", "modbus/charger-001")
    assert reporter.counts() == {"timeout": 1}
