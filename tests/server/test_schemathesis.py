"""Property-based: schemathesis generates requests from /openapi.json (valid and edge-case
values for every parameter and body) and sends them, with an admin key, to a real server.
Whatever it sends, the server answers with a 4xx it documents or a success, never a 5xx.

Bounded but thorough: 60 examples per operation and generation mode (derandomized: the same
requests every run), and the answers must also match the documented status codes and
response schemas.
The two endless Server-Sent Event streams are left out (test_api.py covers them).
(Schemathesis' own pytest plugin, `from_fixture`, does not run under pytest 9 yet, so the
operations are driven with Hypothesis directly.)
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from server_helpers import Running

EXAMPLES = 60
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def test_generated_requests_never_cause_a_server_error(server: Running):
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith("stream"):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            def check(case) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

            try:
                check()
            except Unsatisfiable:
                # Nothing of this operation can be made invalid (e.g. no parameters at all).
                assert mode is GenerationMode.NEGATIVE, operation.label
        tested.append(operation.label)
    assert len(tested) >= 17, tested
