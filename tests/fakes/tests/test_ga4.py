"""Ga4Fake over plain HTTP, the way the Measurement Protocol is called (no official SDK)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from rtmn_fakes.ga4 import Ga4Fake
from rtmn_fakes.payloads import load

MEASUREMENT = "G-RTMN000042"
SECRET = "ga4-secret-for-tests"


@pytest.fixture
async def fake() -> AsyncIterator[Ga4Fake]:
    async with Ga4Fake(MEASUREMENT, SECRET) as fake:
        yield fake


async def post(fake: Ga4Fake, path: str, body: Any, **query: str) -> tuple[int, bytes]:
    params = {"measurement_id": MEASUREMENT, "api_secret": SECRET, **query}
    data = io.BytesIO(json.dumps(body).encode())
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{fake.url}{path}", params=params, data=data) as r,
    ):
        return r.status, await r.read()


def hit(*names: str, **params: Any) -> dict[str, Any]:
    return {"client_id": "555.123", "events": [{"name": n, "params": dict(params)} for n in names]}


async def test_valid_hit_is_204_and_recorded(fake: Ga4Fake) -> None:
    status, body = await post(fake, "/mp/collect", hit("purchase", value=499, currency="INR"))

    assert (status, body) == (204, b"")
    assert fake.violations == []
    assert fake.events == [
        {"client_id": "555.123", "name": "purchase", "params": {"value": 499, "currency": "INR"}}
    ]


async def test_rule_breaking_hits_are_still_204_but_recorded_as_violations(fake: Ga4Fake) -> None:
    too_many = hit(*[f"e{i}" for i in range(26)])
    too_big = hit("big", blob="x" * 140_000)
    statuses = [
        (await post(fake, "/mp/collect", too_many))[0],
        (await post(fake, "/mp/collect", too_big))[0],
        (await post(fake, "/mp/collect", hit("ok"), api_secret="wrong"))[0],
    ]

    assert statuses == [204, 204, 204]
    codes = [
        (v.request.path, v.message.validation_code, v.message.field_path) for v in fake.violations
    ]
    assert codes == [
        ("/mp/collect", "EXCEEDED_MAX_ENTITIES", "events"),
        ("/mp/collect", "VALUE_OUT_OF_BOUNDS", ""),
        ("/mp/collect", "VALUE_OUT_OF_BOUNDS", "events[0].params.blob"),
        ("/mp/collect", "VALUE_INVALID", "api_secret"),
    ]
    assert fake.violations[1].request.body == fake.requests[1].body
    assert fake.events == []


async def test_debug_endpoint_answers_the_published_example(fake: Ga4Fake) -> None:
    request = load("ga4", "debug_mp_collect.request.firebase_bad_event.json")

    status, body = await post(fake, "/debug/mp/collect", request)

    assert status == 200
    assert json.loads(body) == load("ga4", "debug_mp_collect.validation_response.name_invalid.json")


@pytest.mark.parametrize(
    ("body", "code", "path"),
    [
        (hit("session_start"), "NAME_RESERVED", "events"),
        (hit("firebase_thing"), "NAME_RESERVED", "events"),
        (hit("has space"), "NAME_INVALID", "events"),
        (hit("ok", _private=1), "NAME_INVALID", "events[0].params"),
        (hit("ok", note="n" * 101), "VALUE_OUT_OF_BOUNDS", "events[0].params.note"),
        (hit("ok", **{f"p{i}": i for i in range(26)}), "EXCEEDED_MAX_ENTITIES", "events[0].params"),
        ({"events": [{"name": "ok"}]}, "VALUE_REQUIRED", "client_id"),
        ({"client_id": "1"}, "VALUE_REQUIRED", "events"),
    ],
)
async def test_debug_findings(fake: Ga4Fake, body: Any, code: str, path: str) -> None:
    _, answer = await post(fake, "/debug/mp/collect", body)

    [message] = json.loads(answer)["validationMessages"]
    assert (message["validationCode"], message["fieldPath"]) == (code, path)


async def test_clean_debug_request_has_no_messages(fake: Ga4Fake) -> None:
    _, answer = await post(fake, "/debug/mp/collect", hit("refund", value=1))

    assert json.loads(answer) == {"validationMessages": []}
