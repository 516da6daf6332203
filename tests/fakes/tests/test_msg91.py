"""Msg91Fake driven over plain HTTP, the way MSG91 is called (it has no Python SDK)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from rtmn_fakes.msg91 import Msg91Fake
from rtmn_fakes.payloads import load

AUTHKEY = "367584AbCdEfGh1234"


@pytest.fixture
async def fake() -> AsyncIterator[Msg91Fake]:
    async with Msg91Fake(AUTHKEY) as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def send(
    http: aiohttp.ClientSession, fake: Msg91Fake, body: Any, authkey: str = AUTHKEY
) -> tuple[int, Any]:
    headers = {"authkey": authkey, "Content-Type": "application/json"}
    async with http.post(f"{fake.url}/api/v5/flow/", json=body, headers=headers) as response:
        return response.status, await response.json()


def published_request() -> dict[str, Any]:
    body: dict[str, Any] = load("msg91", "flow.send.request.json")
    body["recipients"][0]["mobiles"] = "919812345678"
    body["recipients"][1]["mobiles"] = "918912345678"
    return body


async def test_published_request_is_accepted_and_recorded(
    fake: Msg91Fake, http: aiohttp.ClientSession
) -> None:
    status, answer = await send(http, fake, published_request())

    assert status == 200
    assert set(answer) == set(load("msg91", "flow.send.response.success.json"))
    assert answer["type"] == "success"
    assert re.fullmatch(r"[0-9a-f]{24}", answer["message"])
    first, second = fake.sent
    assert (first.request_id, first.flow_id, first.sender) == (
        answer["message"],
        "EnterflowID",
        "EnterSenderID",
    )
    assert first.variables == {"VAR1": "VALUE 1", "VAR2": "VALUE 2"}
    assert fake.sends_to("918912345678") == [second]


async def test_otp_variable_is_readable_by_the_test(
    fake: Msg91Fake, http: aiohttp.ClientSession
) -> None:
    fake.register_flow("otp-flow", ["otp"], sender="RTMNIN")
    body = {
        "flow_id": "otp-flow",
        "sender": "RTMNIN",
        "recipients": [{"mobiles": "919800000001", "otp": 482913}],
    }

    await send(http, fake, body)

    assert fake.wait_for_send("919800000001").variables == {"otp": "482913"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"sender": "X", "recipients": [{"mobiles": "919800000001"}]}, "Flow ID is missing"),
        ({"flow_id": "f", "recipients": []}, "Recipients are missing"),
        ({"flow_id": "f", "recipients": [{"mobiles": "+919800000001"}]}, "Invalid mobile number"),
        ({"flow_id": "f", "recipients": [{"mobiles": "98000"}]}, "Invalid mobile number"),
        (
            {"flow_id": "f", "recipients": [{"mobiles": "919800000001", "otp": None}]},
            "must be a string",
        ),
        ({"flow_id": "f", "template": "x", "recipients": []}, "Unknown parameter template"),
        ([{"flow_id": "f"}], "Invalid JSON body"),
    ],
)
async def test_malformed_sends_are_errors(
    fake: Msg91Fake, http: aiohttp.ClientSession, body: Any, message: str
) -> None:
    status, answer = await send(http, fake, body)

    assert status == 400
    assert answer == {"type": "error", "message": answer["message"]}
    assert message in answer["message"]
    assert fake.sent == []


async def test_registered_flows_refuse_unknown_ids_and_missing_variables(
    fake: Msg91Fake, http: aiohttp.ClientSession
) -> None:
    fake.register_flow("otp-flow", ["otp"])

    _, unknown = await send(
        http, fake, {"flow_id": "other", "recipients": [{"mobiles": "919800000001"}]}
    )
    _, missing = await send(
        http, fake, {"flow_id": "otp-flow", "recipients": [{"mobiles": "919800000001"}]}
    )

    assert unknown["message"] == "Invalid flow id"
    assert missing["message"] == "Missing variable otp"


async def test_wrong_authkey_is_an_authentication_failure(
    fake: Msg91Fake, http: aiohttp.ClientSession
) -> None:
    status, answer = await send(http, fake, published_request(), authkey="nope")

    assert (status, answer["type"]) == (401, "error")
    assert fake.sent == []


async def test_errors_can_come_with_http_200_to_prove_clients_read_type(
    http: aiohttp.ClientSession,
) -> None:
    async with Msg91Fake(AUTHKEY, error_http_status=200) as fake:
        status, answer = await send(http, fake, {"flow_id": "f", "recipients": []})

    assert (status, answer["type"]) == (200, "error")


async def test_armed_503_and_malformed_body(fake: Msg91Fake, http: aiohttp.ClientSession) -> None:
    fake.fail_next(1, status=503, retry_after=7)
    fake.malformed_next(1)

    async with http.post(
        f"{fake.url}/api/v5/flow/", json=published_request(), headers={"authkey": AUTHKEY}
    ) as r:
        assert (r.status, r.headers["Retry-After"]) == (503, "7")
        assert (await r.json())["type"] == "error"
    async with http.post(
        f"{fake.url}/api/v5/flow/", json=published_request(), headers={"authkey": AUTHKEY}
    ) as r:
        assert r.status == 200
        with pytest.raises(aiohttp.ContentTypeError):
            await r.json()
    assert fake.sent == []


async def test_a_delivery_report_has_the_published_v2_shape(
    fake: Msg91Fake, http: aiohttp.ClientSession
) -> None:
    fake.register_flow("otp-flow", ["otp"], sender="RTMNIN")
    body = {"flow_id": "otp-flow", "sender": "RTMNIN",
            "recipients": [{"mobiles": "919812345678", "otp": "482913"}]}  # fmt: skip
    _, answer = await send(http, fake, body)

    form = fake.delivery_report(answer["message"], "2")

    assert set(form) == {"data"}
    [request] = json.loads(form["data"])
    published = json.loads(load("msg91", "webhook.v2.delivery_report.docs.json")["data"])[0]
    assert set(request) == set(published)
    assert set(request["report"][0]) == set(published["report"][0])
    assert (request["requestId"], request["senderId"]) == (answer["message"], "RTMNIN")
    report = request["report"][0]
    assert (report["number"], report["status"], report["desc"]) == ("919812345678", "2", "FAILED")


WHATSAPP = "/api/v5/whatsapp/whatsapp-outbound-message/bulk/"


async def send_whatsapp(http: aiohttp.ClientSession, fake: Msg91Fake, body: Any) -> tuple[int, Any]:
    headers = {"authkey": AUTHKEY, "Content-Type": "application/json"}
    async with http.post(f"{fake.url}{WHATSAPP}", json=body, headers=headers) as response:
        return response.status, await response.json()


def whatsapp_request(number: str = "919800000001", to: str = "919812345678") -> dict[str, Any]:
    body: dict[str, Any] = load("msg91", "whatsapp.outbound.bulk.request.thirdparty_observed.json")
    body["integrated_number"] = number
    body["payload"]["template"]["name"] = "offer_text"
    body["payload"]["template"]["to_and_components"][0]["to"] = [to]
    return body


async def test_a_whatsapp_template_message_is_accepted_and_recorded(
    fake: Msg91Fake, http: aiohttp.ClientSession
) -> None:
    fake.register_whatsapp_number("919800000001")
    fake.register_whatsapp_template("offer_text", body_variables=1)

    status, answer = await send_whatsapp(http, fake, whatsapp_request())

    assert status == 200
    published = load("msg91", "whatsapp.outbound.bulk.response.success.thirdparty_observed.json")
    assert set(answer) == set(published)
    assert (answer["status"], answer["hasError"]) == ("success", False)
    [sent] = fake.whatsapp_to("919812345678")
    assert (sent.request_id, sent.template, sent.language) == (
        answer["request_id"],
        "offer_text",
        "en",
    )
    assert sent.components == {"body_1": "VALUE 1"}


@pytest.mark.parametrize(
    "change",
    ["unknown number", "unknown template", "missing variable", "plus sign", "text content"],
)
async def test_a_whatsapp_message_msg91_would_refuse_is_refused(
    fake: Msg91Fake, http: aiohttp.ClientSession, change: str
) -> None:
    fake.register_whatsapp_number("919800000001")
    fake.register_whatsapp_template("offer_text", body_variables=2)
    body = whatsapp_request()
    template = body["payload"]["template"]
    if change == "unknown number":
        body["integrated_number"] = "919800000002"
    elif change == "unknown template":
        template["name"] = "not_approved"
    elif change == "plus sign":
        template["to_and_components"][0]["to"] = ["+919812345678"]
    elif change == "text content":
        body["content_type"] = "text"
    components = template["to_and_components"][0]["components"]
    components["body_2"] = {"type": "text", "value": "two"}
    if change == "missing variable":
        del components["body_2"]

    status, answer = await send_whatsapp(http, fake, body)

    assert status == 400
    assert (answer["status"], answer["hasError"]) == ("fail", True)
    assert answer["errors"]
    assert fake.whatsapp_sent == []
