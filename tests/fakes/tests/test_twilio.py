"""The real twilio SDK (async and blocking) against TwilioFake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from rtmn_fakes.twilio import TwilioFake, segments

# twilio 9.13's async client passes aiohttp.BasicAuth as `auth=`, both deprecated in aiohttp 3.14.
pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]

SID = "AC" + "12" * 16
TOKEN = "auth_token_for_tests"
SERVICE = "MG" + "34" * 16


@pytest.fixture
async def fake() -> AsyncIterator[TwilioFake]:
    async with TwilioFake(SID, TOKEN) as fake:
        yield fake


@asynccontextmanager
async def twilio_client(fake: TwilioFake, token: str = TOKEN) -> AsyncIterator[Client]:
    """PROVIDERS.md: async http client built inside the loop, base_url overridden, closed."""
    http_client = AsyncTwilioHttpClient()
    client = Client(SID, token, http_client=http_client)
    client.api.base_url = fake.url
    try:
        yield client
    finally:
        await http_client.close()


async def test_sms_is_sent_recorded_and_answered_like_twilio(fake: TwilioFake) -> None:
    async with twilio_client(fake) as client:
        message = await client.messages.create_async(
            to="+919812345678", from_="+14155550100", body="Your code is 482913"
        )

    assert message.sid.startswith("SM")
    assert len(message.sid) == 34
    assert (message.status, message.to, message.from_) == (
        "queued",
        "+919812345678",
        "+14155550100",
    )
    assert message.num_segments == "1"
    [sent] = fake.sent_messages
    assert (sent.sid, sent.body) == (message.sid, "Your code is 482913")
    assert fake.wait_for_message("+919812345678").body.endswith("482913")


async def test_messaging_service_send_is_accepted_without_a_sender(fake: TwilioFake) -> None:
    async with twilio_client(fake) as client:
        message = await client.messages.create_async(
            to="+919812345678", messaging_service_sid=SERVICE, body="hi"
        )

    assert (message.status, message.from_, message.messaging_service_sid) == (
        "accepted",
        None,
        SERVICE,
    )


@pytest.mark.parametrize(
    ("to", "from_", "body", "code"),
    [
        ("9812345678", "+14155550100", "hi", 21211),
        ("+919812345678", "not a number!", "hi", 21212),
        ("+919812345678", None, "hi", 21603),
        ("+919812345678", "+14155550100", "", 21602),
        ("+919812345678", "+14155550100", "x" * 1601, 21617),
    ],
)
async def test_invalid_sends_get_twilio_error_codes(
    fake: TwilioFake, to: str, from_: str | None, body: str, code: int
) -> None:
    async with twilio_client(fake) as client:
        with pytest.raises(TwilioRestException) as caught:
            await client.messages.create_async(to=to, from_=from_, body=body)

    assert (caught.value.code, caught.value.status) == (code, 400)
    assert fake.sent_messages == []


async def test_bad_credentials_are_error_20003(fake: TwilioFake) -> None:
    async with twilio_client(fake, token="wrong") as client:
        with pytest.raises(TwilioRestException) as caught:
            await client.messages.create_async(to="+919812345678", from_="+14155550100", body="x")

    assert (caught.value.code, caught.value.status) == (20003, 401)


async def test_rejected_number_answers_with_the_chosen_code(fake: TwilioFake) -> None:
    fake.reject_number("+919800000000", 21610)

    async with twilio_client(fake) as client:
        with pytest.raises(TwilioRestException) as caught:
            await client.messages.create_async(to="+919800000000", from_="+14155550100", body="x")

    assert caught.value.code == 21610
    assert caught.value.msg == "Unable to create record: Attempt to send to unsubscribed recipient"


async def test_wait_for_message_sees_a_send_made_in_the_background(fake: TwilioFake) -> None:
    async with twilio_client(fake) as client:
        send = asyncio.create_task(
            client.messages.create_async(to="+919811111111", from_="+14155550100", body="code 1")
        )
        sent = await asyncio.to_thread(fake.wait_for_message, "+919811111111")
        await send

    assert sent.body == "code 1"


async def test_timeouts_come_from_asyncio_because_the_clients_own_is_ignored(
    fake: TwilioFake,
) -> None:
    fake.delay_next(1, 2.0)

    async with twilio_client(fake) as client:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await client.messages.create_async(
                    to="+919811111111", from_="+1415555010", body="x"
                )


def test_blocking_client_and_a_signed_status_callback() -> None:
    with TwilioFake(SID, TOKEN) as fake:
        client = Client(SID, TOKEN)
        client.api.base_url = fake.url
        message = client.messages.create(
            to="+919812345678",
            from_="RTMN",
            body="₹ refund done",
            status_callback="https://notify.example/twilio/status",
        )
        fetched = client.messages(message.sid).fetch()

        url, params, headers = fake.status_callback(message.sid, "undelivered", error_code=30003)

    assert fetched.sid == message.sid
    assert (params["MessageStatus"], params["ErrorCode"]) == ("undelivered", "30003")
    validator = RequestValidator(TOKEN)
    assert validator.validate(url, params, headers["X-Twilio-Signature"])
    assert not validator.validate(
        url, {**params, "MessageStatus": "delivered"}, headers["X-Twilio-Signature"]
    )


def test_segments_follow_gsm7_and_ucs2_limits() -> None:
    assert [segments("a" * 160), segments("a" * 161), segments("₹" * 70), segments("₹" * 71)] == [
        1,
        2,
        1,
        2,
    ]


CONTENT = "HX" + "ab" * 16
WA_FROM = "+14155238886"


async def test_a_call_with_inline_twiml_is_placed_and_recorded(fake: TwilioFake) -> None:
    twiml = '<Response><Say language="en-IN">1, 2, 3</Say></Response>'
    async with twilio_client(fake) as client:
        call = await client.calls.create_async(
            to="+919812345678", from_="+14155550100", twiml=twiml, status_callback="http://x/cb"
        )
    assert call.sid.startswith("CA")
    assert (call.status, call.to, call._from) == ("queued", "+919812345678", "+14155550100")
    [placed] = fake.calls_to("+919812345678")
    assert (placed.sid, placed.spoken(), placed.say_languages()) == (
        call.sid,
        ["1, 2, 3"],
        {"en-IN"},
    )
    assert placed.status_callback == "http://x/cb"


@pytest.mark.parametrize(
    ("to", "from_", "twiml", "code"),
    [
        ("+919812345678", "+14155550100", None, 21205),
        ("98123", "+14155550100", "<Response/>", 21211),
        ("+919812345678", "+14155550100", "<Response><Say>unclosed", 12100),
    ],
)
async def test_invalid_calls_get_twilio_error_codes(
    fake: TwilioFake, to: str, from_: str, twiml: str | None, code: int
) -> None:
    extra = {"twiml": twiml} if twiml else {}
    async with twilio_client(fake) as client:
        with pytest.raises(TwilioRestException) as error:
            await client.calls.create_async(to=to, from_=from_, **extra)
    assert error.value.code == code
    assert fake.calls == []


async def test_whatsapp_template_is_sent_between_whatsapp_addresses(fake: TwilioFake) -> None:
    fake.register_whatsapp_sender(WA_FROM)
    fake.register_content(CONTENT, ("1",))
    async with twilio_client(fake) as client:
        message = await client.messages.create_async(
            to="whatsapp:+919812345678", from_=f"whatsapp:{WA_FROM}",
            content_sid=CONTENT, content_variables='{"1": "482913"}',
        )  # fmt: skip
    [sent] = fake.messages_to("whatsapp:+919812345678")
    assert (sent.sid, sent.content_sid, sent.content_variables) == (
        message.sid,
        CONTENT,
        {"1": "482913"},
    )


@pytest.mark.parametrize(
    ("from_", "content", "variables", "code"),
    [
        ("whatsapp:+14155550999", CONTENT, '{"1": "1"}', 63007),  # not a WhatsApp sender
        (f"whatsapp:{WA_FROM}", None, None, 63016),  # freeform outside a session
        (f"whatsapp:{WA_FROM}", "HX" + "cd" * 16, '{"1": "1"}', 63016),  # not approved
        (f"whatsapp:{WA_FROM}", CONTENT, "{}", 21656),  # placeholder left empty
    ],
)
async def test_whatsapp_refuses_what_twilio_refuses(
    fake: TwilioFake, from_: str, content: str | None, variables: str | None, code: int
) -> None:
    fake.register_whatsapp_sender(WA_FROM)
    fake.register_content(CONTENT, ("1",))
    extra = {"content_sid": content} if content else {"body": "482913"}
    if variables is not None:
        extra["content_variables"] = variables
    async with twilio_client(fake) as client:
        with pytest.raises(TwilioRestException) as error:
            await client.messages.create_async(to="whatsapp:+919812345678", from_=from_, **extra)
    assert error.value.code == code
    assert fake.sent_messages == []


async def test_a_finished_call_reports_to_its_status_callback_signed(fake: TwilioFake) -> None:
    async with twilio_client(fake) as client:
        call = await client.calls.create_async(
            to="+919812345678", from_="+14155550100", twiml="<Response><Say>1</Say></Response>",
            status_callback="https://otp.example/api/otp/receipts/twilio",
        )  # fmt: skip
    url, params, headers = fake.call_status_callback(call.sid, "no-answer")
    assert (params["CallSid"], params["CallStatus"]) == (call.sid, "no-answer")
    validator = RequestValidator(TOKEN)
    assert validator.validate(url, params, headers["X-Twilio-Signature"])
    assert not validator.validate(
        url, {**params, "CallStatus": "completed"}, headers["X-Twilio-Signature"]
    )
