"""A NUL character in any one field of an otherwise valid request (PostgreSQL's text and jsonb
refuse it) gets a 4xx problem, never a 5xx. Deterministic, one field at a time: the fuzzer in
test_fuzz.py leaves NULs out so that its runs do not depend on which strings it drew."""

from __future__ import annotations

import pytest
from requests_kit import every_scope, nul_variants, operations, send
from security_kit import SERVICE_NAMES, Fleet, problem_error

from rtmn_shared.testing.infra import Suite


async def nul_failures(fleet: Fleet, suite: Suite, name: str) -> list[str]:
    svc = await fleet.get(name)
    document = await (await svc.client.get("/openapi.json")).json()
    headers = suite.bearer(f"nul-user-{suite.run_id}", every_scope(document))
    wrong: list[str] = []
    for operation in operations(document):
        for where, request in nul_variants(operation, document):
            status, content_type, body, _ = await send(svc.client, request, headers)
            if status >= 500:
                wrong.append(f"{operation.label} NUL in {where}: {status} {body[:160]!r}")
            elif problem := problem_error(status, content_type, body):
                wrong.append(f"{operation.label} NUL in {where}: {problem}")
    return wrong


@pytest.mark.parametrize("name", SERVICE_NAMES)
async def test_a_nul_character_in_any_field_gets_a_problem_not_a_5xx(
    fleet: Fleet, suite: Suite, name: str
) -> None:
    wrong = await nul_failures(fleet, suite, name)
    assert not wrong, "\n".join(wrong)
