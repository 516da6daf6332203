"""No provider secret, token, one-time code or full phone number in any log line: the scanner
itself, then the OTP and payments flows through HTTP with every record captured."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator

import pytest
from logscan import captured_logs, scan
from security_kit import PROVIDER_SECRETS, Fleet, otp_overrides

from otp.app import SERVICE as OTP
from rtmn_fakes.msg91 import Msg91Fake
from rtmn_fakes.twilio import TwilioFake
from rtmn_shared.logs import mask_phone
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import RunningService, running

TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLWJ5dGVz"
TWILIO_TOKEN = "twilio-auth-token-security-2b7e"
MSG91_KEY = "msg91-authkey-security-6c0d"
MSG91_FLOW = "security-flow"

# twilio 9.13's async client passes aiohttp.BasicAuth as `auth=`, both deprecated in aiohttp 3.14
# (see services/otp/tests/conftest.py); the suite turns warnings into errors.
pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (f"calling razorpay with {PROVIDER_SECRETS[0]}", "configured secret"),
        (f"Authorization: Bearer {TOKEN}", "jwt"),
        ("sent otp 482913 to the user", "otp"),
        ('{"msg": "verification code: 004211"}', "otp"),
        ("482913 is your RTMN code", "otp"),
        ("sms to +919876543210 queued", "e164 phone"),
        ("sms to 9876543210 queued", "indian mobile"),
        ('{"phone": "919876543210"}', "indian mobile"),
    ],
)
def test_the_scanner_finds_each_kind(line: str, kind: str) -> None:
    findings = scan([line], PROVIDER_SECRETS)
    assert [f.kind for f in findings] == [kind]
    assert "9876543210" not in str(findings[0])  # the report does not repeat what it found
    assert PROVIDER_SECRETS[0] not in str(findings[0])


@pytest.mark.parametrize(
    "line",
    [
        mask_phone("sms to +919876543210 queued"),
        '{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "request_id": "9876543210abcdef"}',
        '{"event_id": "123e4567-e89b-12d3-a456-426614174000", "amount": 250000}',
        '{"ts": "2026-11-27T01:00:56.123+00:00", "msg": "POST /api/otp/verify -> 400 in 3.2 ms"}',
        "order 123456 captured",  # six digits, but no code nearby
        # The id after an otp line's message, six digits in a row inside its hex.
        '{"msg":"otp sent","span_id":"318402f4ce142b9a","trace_id":"84ba684c069662144597"}',
    ],
)
def test_the_scanner_leaves_ordinary_lines_alone(line: str) -> None:
    assert scan([line], PROVIDER_SECRETS) == []


def test_the_scanner_reads_a_whole_log_text() -> None:
    text = "\n".join(['{"msg": "fine"}', f'{{"msg": "token {TOKEN}"}}'])
    [finding] = scan(text)
    assert finding.line == 2


@pytest.fixture
async def otp_live(suite: Suite) -> AsyncIterator[tuple[RunningService, TwilioFake]]:
    """OTP with its real Twilio and MSG91 clients on their fakes, so their code paths log."""
    async with (
        TwilioFake(auth_token=TWILIO_TOKEN) as twilio,
        Msg91Fake(authkey=MSG91_KEY) as msg91,
    ):
        msg91.register_flow(MSG91_FLOW, ["otp"], sender="RTMNIN")
        settings = OTP.settings(
            **otp_overrides(),
            twilio_account_sid=twilio.account_sid,
            twilio_auth_token=TWILIO_TOKEN,
            twilio_phone_number="+15005550006",
            twilio_base_url=twilio.url,
            msg91_auth_key=MSG91_KEY,
            msg91_flow_id=MSG91_FLOW,
            msg91_base_url=msg91.url,
        )
        async with running(OTP, settings, relay=False, consumers=False) as svc:
            yield svc, twilio


async def test_the_otp_and_payments_flows_log_no_secret(
    otp_live: tuple[RunningService, TwilioFake], fleet: Fleet, suite: Suite
) -> None:
    otp, twilio = otp_live
    phone = "+9197" + "".join(secrets.choice("0123456789") for _ in range(8))
    user = f"log-user-{uuid.uuid4().hex[:8]}"
    bearer = suite.bearer(user)
    payments = await fleet.get("payments")
    with captured_logs() as lines:
        sent = await otp.client.post("/api/otp/send", json={"phone": phone})
        assert sent.status in (200, 202), await sent.text()
        [sms] = twilio.messages_to(phone)
        code = next(word for word in sms.body.split() if word.isdigit() and len(word) == 6)
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        refused = await otp.client.post("/api/otp/verify", json={"phone": phone, "otp": wrong})
        assert refused.status >= 400
        verified = await otp.client.post("/api/otp/verify", json={"phone": phone, "otp": code})
        assert verified.status == 200, await verified.text()
        verification_token = (await verified.json())["token"]

        created = []
        for gateway in ("razorpay", "stripe", "upi"):
            body = {
                "order_id": f"ord-{uuid.uuid4().hex[:10]}",
                "order_number": "RTMN-1001",
                "merchant_id": "m-1",
                "amount": 25_000,
                "gateway": gateway,
                "user_id": user,
            }
            reply = await payments.client.post(
                "/api/payments/create", json=body, headers=suite.bearer("commerce", "service")
            )
            assert reply.status == 201, await reply.text()
            created.append(await reply.json())
        for payment in created:
            seen = await payments.client.get(
                f"/api/payments/{payment['payment_id']}", headers=bearer
            )
            assert seen.status == 200
        forged = {
            "razorpay_order_id": "order_forged",
            "razorpay_payment_id": "pay_forged",
            "razorpay_signature": "0" * 64,
        }
        refused = await payments.client.post("/api/payments/verify", json=forged, headers=bearer)
        assert refused.status >= 400
        hook = await payments.client.post(
            "/api/webhooks/razorpay",
            data=b'{"event": "payment.captured"}',
            headers={"X-Razorpay-Signature": "f" * 64, "X-Razorpay-Event-Id": "evt_1"},
        )
        assert hook.status >= 400

    loggers = {json.loads(line)["logger"] for line in lines}
    assert {"otp.flows", "rtmn_shared.web.app"} <= loggers, "the capture missed the services"
    findings = scan(
        lines,
        [*PROVIDER_SECRETS, TWILIO_TOKEN, MSG91_KEY, verification_token, code, phone.lstrip("+")],
    )
    assert not findings, "\n".join(str(f) for f in findings)
