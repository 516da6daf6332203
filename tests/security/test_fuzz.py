"""Schemathesis against every service's /openapi.json: generated requests, valid and invalid,
never get a 5xx, and every error is an RFC 9457 problem document.

Each service runs in-process (providers in sandboxes or on contract fakes: security_kit.py);
schemathesis drives it with `requests` from a worker thread through the TestServer's real local
port, while the event loop keeps serving. Generation is bounded and seeded, so a failure
reproduces run to run (for the same selection of tests: schemathesis keeps some state between
operations).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from requests_kit import every_scope
from security_kit import SERVICE_NAMES, Fleet, problem_error

from rtmn_shared.testing.infra import Suite

# Until the root dev group lists it, the rest of the suite must still collect without it.
pytest.importorskip("schemathesis", reason="schemathesis>=4.32 belongs in the root dev group")
import schemathesis
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.core.result import Err

EXAMPLES = 25  # per operation and per mode
SEED = 20261127
# NUL characters are probed one field at a time, deterministically, by test_nul.py; left in
# here they would make a run pass or fail on which strings happened to be drawn.
CONFIG = schemathesis.Config.from_dict({"generation": {"allow-x00": False}})
REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Failure:
    operation: str
    mode: str
    reason: str
    request: str

    def __str__(self) -> str:
        return f"{self.operation} [{self.mode}]: {self.reason}\n    e.g. {self.request}"


@dataclass(frozen=True)
class Outcome:
    sent: int
    failures: list[Failure]
    unsatisfiable: list[str]


def fuzz(document: dict[str, Any], base_url: str, headers: dict[str, str]) -> Outcome:
    """Runs in a worker thread: blocking HTTP while the test's loop serves the service."""
    schema = schemathesis.openapi.from_dict(document, config=CONFIG)
    failures: dict[tuple[str, str, str], Failure] = {}
    sent = 0
    skipped: list[str] = []
    with requests.Session() as session:

        def exercise(operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode) -> None:
            @settings(
                max_examples=EXAMPLES,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @seed(SEED)
            @given(case=operation.as_strategy(generation_mode=mode))
            def one(case: Case[Any]) -> None:
                nonlocal sent
                response = case.call(
                    base_url=base_url,
                    session=session,
                    headers=headers,
                    timeout=REQUEST_TIMEOUT_S,
                    allow_redirects=False,
                )
                sent += 1
                reason = verdict(response)
                if reason is not None:
                    key = (operation.label, str(mode), reason.split(":")[0])
                    failures.setdefault(
                        key, Failure(operation.label, str(mode), reason, case.as_curl_command())
                    )

            try:
                one()
            except Unsatisfiable:
                # Nothing of this operation can be made invalid (or valid): no case to send.
                skipped.append(f"{operation.label} [{mode}]")

        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()  # our generated document has an operation it cannot read
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                exercise(result.ok(), mode)
    return Outcome(sent, list(failures.values()), skipped)


def verdict(response: schemathesis.Response) -> str | None:
    if response.status_code >= 500:
        return f"server error {response.status_code}: {response.content[:200]!r}"
    content_type: str = response.headers.get("content-type", [""])[0]
    return problem_error(response.status_code, content_type, response.content)


async def run_fuzz(fleet: Fleet, suite: Suite, name: str) -> Outcome:
    svc = await fleet.get(name)
    base_url = str(svc.client.make_url("/")).rstrip("/")
    document = await (await svc.client.get("/openapi.json")).json()
    # Per run: rate-limit windows in the shared Redis outlive a run and would answer 429.
    headers = suite.bearer(f"fuzz-user-{suite.run_id}", every_scope(document))
    return await asyncio.to_thread(fuzz, document, base_url, headers)


@pytest.mark.parametrize("name", SERVICE_NAMES)
async def test_generated_requests_get_no_5xx_and_only_problem_errors(
    fleet: Fleet, suite: Suite, name: str
) -> None:
    outcome = await run_fuzz(fleet, suite, name)
    print(name, outcome.sent, "requests; nothing to generate for", outcome.unsatisfiable)
    assert outcome.sent > 0, f"{name}: schemathesis generated no request"
    assert not outcome.failures, f"{name}: " + "\n".join(str(f) for f in outcome.failures)
