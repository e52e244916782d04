"""Schemathesis over the running service's OpenAPI document: no request makes a 5xx.

Every operation is called with generated (valid and invalid) parameters and bodies as the
operator, who may do everything the API offers. The live stream is left out: it never ends.
Operations are driven from one test with Hypothesis directly (schemathesis' pytest plugin does
not load under the pytest this project uses).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.integration.api.conftest import TOKENS, RunningService

pytestmark = pytest.mark.integration


def test_no_server_errors(service: RunningService) -> None:
    schema = schemathesis.openapi.from_url(service.url + "/api/v1/openapi.json")
    schema = schema.exclude(path="/api/v1/events")
    headers = {"Authorization": f"Bearer {TOKENS['operator']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        check()
