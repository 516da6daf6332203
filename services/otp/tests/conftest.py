"""The OTP service running in-process against real Redis and PostgreSQL, with Twilio and MSG91
as contract fakes on this test loop."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from aiohttp.web import Application, Request
from redis.asyncio import Redis

from otp.app import SERVICE
from otp.domain import Hasher, parse_phone
from otp.settings import OtpSettings
from otp.store import Keys
from rtmn_fakes.msg91 import Msg91Fake
from rtmn_fakes.twilio import TwilioFake
from rtmn_shared.cli.token import generate_keypair
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import RunningService, running
from rtmn_shared.web.clients import client_key

HASH_KEY = "test-hash-key-" + "k" * 32
FLOW_ID = "otp-flow-1"
SENDER_ID = "RTMNIN"
FROM_NUMBER = "+15005550006"
WHATSAPP_FROM = "+14155238886"
CONTENT_SID = "HX" + "0a" * 16  # the approved WhatsApp template: "{{1}} is your code..."
CODE = re.compile(r"\b(\d{6})\b")

Client = TestClient[Request, Application]

# twilio 9.13's async client passes aiohttp.BasicAuth as `auth=`, both deprecated in aiohttp 3.14;
# harmless (Python hides it outside tests), but the suite turns warnings into errors.
TWILIO_AIOHTTP_AUTH = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            for mark in TWILIO_AIOHTTP_AUTH:
                item.add_marker(mark)


@pytest.fixture(scope="session")
def signing_keys() -> tuple[str, str]:
    return generate_keypair()


@pytest.fixture(scope="session")
async def twilio() -> AsyncIterator[TwilioFake]:
    async with TwilioFake() as fake:
        fake.register_whatsapp_sender(WHATSAPP_FROM)
        fake.register_content(CONTENT_SID, ("1",))
        yield fake


@pytest.fixture(scope="session")
async def msg91() -> AsyncIterator[Msg91Fake]:
    async with Msg91Fake() as fake:
        fake.register_flow(FLOW_ID, ["otp"], sender=SENDER_ID)
        yield fake


def otp_settings(signing_keys: tuple[str, str], **overrides: Any) -> OtpSettings:
    values: dict[str, Any] = {
        "otp_hash_key": HASH_KEY,
        "otp_signing_key": signing_keys[0],
        "otp_signing_public_key": signing_keys[1],
        # The test client is the gateway's peer; 172.16.0.9 plays a proxy in front of it.
        "trusted_proxies": f"{PEER}/32,{PROXY}/32",
        "otp_ip_hourly_cap": 5,
        # The gate runs on every send; only test_pumping.py sends enough to one range to trip it.
        "otp_pumping_min_sends": 100_000,
        **overrides,
    }
    return OtpSettings(**values)


def live_settings(
    signing_keys: tuple[str, str], twilio: TwilioFake, msg91: Msg91Fake, **overrides: Any
) -> OtpSettings:
    values: dict[str, Any] = {
        "twilio_account_sid": twilio.account_sid,
        "twilio_auth_token": twilio.auth_token,
        "twilio_phone_number": FROM_NUMBER,
        "twilio_base_url": twilio.url,
        "twilio_timeout_s": 0.5,
        "twilio_whatsapp_from": WHATSAPP_FROM,
        "twilio_whatsapp_content_sid": CONTENT_SID,
        "msg91_auth_key": msg91.authkey,
        "msg91_flow_id": FLOW_ID,
        "msg91_sender_id": SENDER_ID,
        "msg91_base_url": msg91.url,
        "msg91_timeout_s": 2.0,
        **overrides,
    }
    return otp_settings(signing_keys, **values)


@pytest.fixture(scope="session")
async def otp(
    suite: Suite, signing_keys: tuple[str, str], twilio: TwilioFake, msg91: Msg91Fake
) -> AsyncIterator[RunningService]:
    """The service with Twilio first and MSG91 as fallback, both pointed at their fakes."""
    async with running(SERVICE, live_settings(signing_keys, twilio, msg91), consumers=False) as svc:
        yield svc


def new_phone() -> str:
    """A valid Indian mobile number no other test uses."""
    return "+9198" + "".join(secrets.choice("0123456789") for _ in range(8))


def new_ip() -> str:
    return "10.{}.{}.{}".format(*(secrets.randbelow(250) + 1 for _ in range(3)))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


PEER = "127.0.0.1"  # the test client's address: the client of a request without X-Forwarded-For
PROXY = "172.16.0.9"


def keys_of(phone: str, purpose: str = "login", *, ip: str = PEER) -> Keys:
    parsed = parse_phone(phone, frozenset({"IN"}))
    hasher = Hasher(HASH_KEY.encode())
    return Keys.of(hasher.phone(parsed), purpose, hasher.client(client_key(ip)))


@dataclass
class Harness:
    """One test's view of a running OTP service, its fakes and Redis."""

    svc: RunningService
    twilio: TwilioFake
    msg91: Msg91Fake
    redis: Redis
    public_key: str

    hash_key = HASH_KEY
    new_phone = staticmethod(new_phone)
    new_ip = staticmethod(new_ip)
    wrong = staticmethod(wrong)
    keys_of = staticmethod(keys_of)

    @property
    def client(self) -> Client:
        return self.svc.client

    async def send(
        self,
        phone: str,
        *,
        ip: str | None = None,
        purpose: str | None = None,
        channel: str | None = None,
    ) -> ClientResponse:
        body = {"phone": phone} if purpose is None else {"phone": phone, "purpose": purpose}
        if channel is not None:
            body["channel"] = channel
        headers = {"X-Forwarded-For": f"{ip or new_ip()}, {PROXY}"}
        return await self.client.post("/api/otp/send", json=body, headers=headers)

    async def verify(self, phone: str, code: str, *, ip: str | None = None) -> ClientResponse:
        """Without `ip`, from the test client's own address (`PEER`)."""
        headers = {"X-Forwarded-For": f"{ip}, {PROXY}"} if ip else {}
        body = {"phone": phone, "otp": code}
        return await self.client.post("/api/otp/verify", json=body, headers=headers)

    def twilio_code(self, phone: str) -> str:
        messages = self.twilio.messages_to(phone)
        assert len(messages) == 1, f"expected one SMS, got {len(messages)}"
        match = CODE.search(messages[0].body)
        assert match is not None
        return match.group(1)

    def voice_code(self, phone: str) -> str:
        """The code the one call to `phone` read out (digit by digit, twice)."""
        calls = self.twilio.calls_to(phone)
        assert len(calls) == 1, f"expected one call, got {len(calls)}"
        readings = {"".join(c for c in said if c.isdigit()) for said in calls[0].spoken()}
        assert len(readings) == 1, "both readings say the same code"
        return readings.pop()

    def whatsapp_code(self, phone: str) -> str:
        messages = self.twilio.messages_to(f"whatsapp:{phone}")
        assert len(messages) == 1, f"expected one WhatsApp message, got {len(messages)}"
        assert messages[0].content_variables is not None
        return messages[0].content_variables["1"]

    def msg91_code(self, phone: str) -> str:
        sends = self.msg91.sends_to(phone.lstrip("+"))
        assert len(sends) == 1, f"expected one MSG91 send, got {len(sends)}"
        return sends[0].variables["otp"]


@pytest.fixture
def h(
    otp: RunningService,
    twilio: TwilioFake,
    msg91: Msg91Fake,
    redis: Redis,
    signing_keys: tuple[str, str],
) -> Harness:
    """The shared service, with both fakes reset (no faults left armed by another test)."""
    twilio.reset()
    msg91.reset()
    return Harness(otp, twilio, msg91, redis, signing_keys[1])


Starter = Callable[..., AbstractAsyncContextManager[Harness]]


@pytest.fixture
def start_otp(
    suite: Suite,
    twilio: TwilioFake,
    msg91: Msg91Fake,
    redis: Redis,
    signing_keys: tuple[str, str],
) -> Starter:
    """Another instance with some settings changed: `async with start_otp(live=False) as h2`."""

    @asynccontextmanager
    async def start(*, live: bool = True, **overrides: Any) -> AsyncIterator[Harness]:
        settings = (
            live_settings(signing_keys, twilio, msg91, **overrides)
            if live
            else otp_settings(signing_keys, **overrides)
        )
        twilio.reset()
        msg91.reset()
        async with running(SERVICE, settings, relay=False, consumers=False) as svc:
            yield Harness(svc, twilio, msg91, redis, signing_keys[1])

    return start
