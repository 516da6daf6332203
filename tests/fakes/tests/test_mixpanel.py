"""The real mixpanel SDK, and the strict JSON dialect over plain HTTP, against MixpanelFake."""

from __future__ import annotations

import gzip
import io
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from mixpanel import Consumer, Mixpanel, MixpanelException, ServiceAccountCredentials

from rtmn_fakes.mixpanel import MixpanelFake
from rtmn_fakes.payloads import load

SECRET = "project-secret-for-tests"
ACCOUNT = ("rtmn-analytics.sa", "sa-secret-for-tests")
PROJECT = "424242"


@pytest.fixture
def threaded() -> Iterator[MixpanelFake]:
    with MixpanelFake(SECRET, service_account=ACCOUNT, project_id=PROJECT) as fake:
        yield fake


@pytest.fixture
async def fake() -> AsyncIterator[MixpanelFake]:
    async with MixpanelFake(SECRET, service_account=ACCOUNT, project_id=PROJECT) as fake:
        yield fake


def test_sdk_import_with_our_insert_id_and_time(threaded: MixpanelFake) -> None:
    consumer = Consumer(import_url=f"{threaded.url}/import", request_timeout=5)
    mp = Mixpanel("project-token", consumer=consumer)

    mp.import_data(
        api_key=None,
        distinct_id="user-1",
        event_name="Order Paid",
        timestamp=1_700_000_000,
        properties={"$insert_id": "evt-0001", "amount": 499},
        api_secret=SECRET,
    )

    [event] = threaded.events
    assert event["event"] == "Order Paid"
    assert event["properties"]["$insert_id"] == "evt-0001"
    assert event["properties"]["time"] == 1_700_000_000
    assert threaded.requests[0].form is not None  # the SDK posts form data, not JSON


def test_sdk_service_account_needs_the_project_id(threaded: MixpanelFake) -> None:
    def importer(project_id: str) -> Mixpanel:
        credentials = ServiceAccountCredentials(*ACCOUNT, project_id=project_id)
        consumer = Consumer(
            import_url=f"{threaded.url}/import", request_timeout=5, credentials=credentials
        )
        return Mixpanel("project-token", consumer=consumer)

    importer(PROJECT).import_data(None, "user-1", "Signup", 1_700_000_000, {"$insert_id": "evt-1"})
    with pytest.raises(MixpanelException, match="Invalid credentials"):
        importer("999").import_data(
            None, "user-1", "Signup", 1_700_000_000, {"$insert_id": "evt-2"}
        )

    assert threaded.insert_ids() == ["evt-1"]


def test_sdk_wrong_secret_is_refused(threaded: MixpanelFake) -> None:
    mp = Mixpanel("t", consumer=Consumer(import_url=f"{threaded.url}/import", request_timeout=5))

    with pytest.raises(MixpanelException, match="Invalid credentials"):
        mp.import_data(None, "user-1", "Signup", 1_700_000_000, api_secret="wrong")

    assert threaded.events == []


def event(insert_id: str, **changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "time": 1_700_000_000,
        "distinct_id": "user-1",
        "$insert_id": insert_id,
    }
    props.update(changes)
    return {"event": "Order Paid", "properties": {k: v for k, v in props.items() if v is not None}}


async def post(fake: MixpanelFake, body: bytes, **headers: str) -> tuple[int, Any]:
    headers = {
        "Authorization": aiohttp.encode_basic_auth(SECRET, ""),
        "Content-Type": "application/json",
        **headers,
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{fake.url}/import?strict=1", data=io.BytesIO(body), headers=headers) as r,
    ):
        return r.status, await r.json()


async def test_gzipped_published_batch_is_imported(fake: MixpanelFake) -> None:
    batch = load("mixpanel", "import.request.batch.docs.json")  # times in milliseconds

    status, body = await post(
        fake, gzip.compress(json.dumps(batch).encode()), **{"Content-Encoding": "gzip"}
    )

    assert (status, body) == (200, {"code": 200, "num_records_imported": 2, "status": "OK"})
    assert set(body) == set(load("mixpanel", "import.200.success.openapi.json"))
    assert [e["event"] for e in fake.events] == ["Signup", "Purchase"]


async def test_strict_failures_list_each_bad_record_and_import_the_rest(fake: MixpanelFake) -> None:
    batch = [
        event("ok-1"),
        event("bad-time", time="yesterday"),
        event("ok-2"),
        event("x" * 37),
        event("no-user", distinct_id=None),
        event("future", time=time.time() + 7200),
    ]

    status, body = await post(fake, json.dumps(batch).encode())

    assert status == 400
    assert set(body) == set(load("mixpanel", "import.400.strict_failed.docs.json"))
    assert body["num_records_imported"] == 2
    assert [(f["index"], f["field"]) for f in body["failed_records"]] == [
        (1, "properties.time"),
        (3, "properties.$insert_id"),
        (4, "properties.distinct_id"),
        (5, "properties.time"),
    ]
    assert body["failed_records"][0]["$insert_id"] == "bad-time"
    assert [e["properties"]["$insert_id"] for e in fake.events] == ["ok-1", "ok-2"]
    assert len(fake.dropped) == 4


async def test_redelivery_shows_up_as_repeated_insert_ids(fake: MixpanelFake) -> None:
    batch = json.dumps([event("evt-1"), event("evt-2")]).encode()

    await post(fake, batch)
    await post(fake, batch)

    assert fake.insert_ids() == ["evt-1", "evt-2", "evt-1", "evt-2"]


async def test_ndjson_body_is_read_line_by_line(fake: MixpanelFake) -> None:
    lines = "\n".join(json.dumps(event(f"evt-{i}")) for i in range(3)).encode()

    status, body = await post(fake, lines, **{"Content-Type": "application/x-ndjson"})

    assert (status, body["num_records_imported"]) == (200, 3)


async def test_limits_auth_and_rate_limit(fake: MixpanelFake) -> None:
    too_many = json.dumps([event(f"e{i}") for i in range(2001)]).encode()
    too_big = json.dumps([event("big", blob=os.urandom(1_100_000).hex())]).encode()
    fake.fail_next(1, status=429, path="/import", where=lambda r: r.body == b"[]")

    many_status, many = await post(fake, too_many)
    big_status, big = await post(fake, too_big)
    limited_status, limited = await post(fake, b"[]")
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{fake.url}/import?strict=1", data=b"[]") as r,
    ):
        anonymous = (r.status, await r.json())

    assert (many_status, many["code"]) == (400, 400)
    assert (big_status, big) == (413, load("mixpanel", "import.413.openapi.json"))
    assert (limited_status, limited) == (429, load("mixpanel", "import.429.openapi.json"))
    assert anonymous == (401, load("mixpanel", "import.401.openapi.json"))
    assert fake.events == []
