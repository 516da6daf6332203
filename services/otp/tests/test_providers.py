"""Each SMS provider on its own against its contract fake: what counts as down, what as refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from otp.domain import parse_phone
from otp.providers import ProviderUnavailable, RecipientRejected, Sms
from otp.providers.msg91 import Msg91Sender
from otp.providers.twilio import TwilioSender
from rtmn_fakes.msg91 import Msg91Fake
from rtmn_fakes.twilio import TwilioFake

SMS = Sms(parse_phone("+919876501234", frozenset({"IN"})), "123456", "123456 is your code")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_msg91_reporting_an_error_with_http_200_is_a_failure(
    session: aiohttp.ClientSession,
) -> None:
    async with Msg91Fake(error_http_status=200) as fake:
        fake.register_flow("approved", ["otp"])
        sender = Msg91Sender(session, auth_key=fake.authkey, flow_id="unknown", sender_id=None,
                             code_variable="otp", timeout_s=2, base_url=fake.url)  # fmt: skip
        with pytest.raises(ProviderUnavailable, match="type error"):
            await sender.send(SMS)
        good = Msg91Sender(session, auth_key=fake.authkey, flow_id="approved", sender_id=None,
                           code_variable="otp", timeout_s=2, base_url=fake.url)  # fmt: skip
        receipt = await good.send(SMS)
        assert receipt.provider == "msg91"
        assert fake.sent[0].variables == {"otp": "123456"}
        assert fake.sent[0].mobiles == "919876501234"


async def test_msg91_timeout_is_a_failure(session: aiohttp.ClientSession) -> None:
    async with Msg91Fake() as fake:
        fake.delay_next(1, 1.0)
        sender = Msg91Sender(session, auth_key=fake.authkey, flow_id="f", sender_id=None,
                             code_variable="otp", timeout_s=0.2, base_url=fake.url)  # fmt: skip
        with pytest.raises(ProviderUnavailable, match="no answer"):
            await sender.send(SMS)


@pytest.mark.parametrize(("code", "kind"), [(21614, RecipientRejected), (21211, RecipientRejected)])
async def test_twilio_refusing_the_recipient_is_final(code: int, kind: type[Exception]) -> None:
    async with TwilioFake() as fake:
        fake.reject_number(SMS.phone.e164, code)
        sender = TwilioSender(account_sid=fake.account_sid, auth_token=fake.auth_token,
                              from_number="+15005550006", messaging_service_sid=None,
                              timeout_s=2, base_url=fake.url)  # fmt: skip
        try:
            with pytest.raises(kind) as error:
                await sender.send(SMS)
            assert "98765" not in str(error.value), "Twilio's message quotes the number"
        finally:
            await sender.close()


async def test_twilio_refusing_our_credentials_lets_the_fallback_try() -> None:
    async with TwilioFake() as fake:
        sender = TwilioSender(account_sid=fake.account_sid, auth_token="wrong",
                              from_number="+15005550006", messaging_service_sid=None,
                              timeout_s=2, base_url=fake.url)  # fmt: skip
        try:
            with pytest.raises(ProviderUnavailable, match="HTTP 401"):
                await sender.send(SMS)
        finally:
            await sender.close()


async def test_twilio_with_a_messaging_service_sends_without_from() -> None:
    async with TwilioFake() as fake:
        sender = TwilioSender(account_sid=fake.account_sid, auth_token=fake.auth_token,
                              from_number=None, messaging_service_sid="MG" + "0" * 32,
                              timeout_s=2, base_url=fake.url)  # fmt: skip
        try:
            receipt = await sender.send(SMS)
        finally:
            await sender.close()
        (sent,) = fake.sent_messages
        assert (receipt.message_id, sent.messaging_service_sid) == (sent.sid, "MG" + "0" * 32)
        assert sent.from_ is None
