"""HTTP handlers: read the request, call a flow, map its outcome to a response or a problem."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from otp.admin import add_prefix_routes
from otp.domain import InvalidPhone, Phone, UnknownPurpose, check_purpose, parse_phone
from otp.flows import (
    ChannelUnavailable,
    EventNotRecorded,
    Limited,
    OtpFlows,
    SmsDown,
    Undeliverable,
    WrongCode,
)
from otp.providers import Channel
from otp.receipts import add_receipt_routes
from otp.settings import OtpSettings
from otp.tokens import TokenSigner
from rtmn_shared.web.clients import client_address
from rtmn_shared.web.problems import Problem, service_unavailable, too_many_requests
from rtmn_shared.web.routes import Call, Routes, json_response

PHONE = Field(min_length=4, max_length=32, description="E.164, or national for the one region")
PURPOSE = Field(default="login", min_length=1, max_length=32)

WAIT = {
    "cooldown": "a code was sent moments ago; wait before asking for another",
    "locked": "too many wrong codes; wait before asking for another",
    "backoff": "many codes were requested for this number; wait before asking for another",
    "pumping": "codes to numbers in this range are paused; try again later",
}


class SendRequest(BaseModel):
    phone: str = PHONE
    purpose: str = PURPOSE
    channel: Channel = Field(
        default="sms", description="how the code travels: SMS, WhatsApp template or a voice call"
    )


class SendAccepted(BaseModel):
    expires_in: int = Field(description="seconds the code stays valid")
    retry_after: int = Field(description="seconds before another code may be requested")


class VerifyRequest(BaseModel):
    phone: str = PHONE
    otp: str = Field(pattern=r"^\d{6}$")
    purpose: str = PURPOSE


class VerifyAnswer(BaseModel):
    token: str = Field(description="EdDSA JWT: sub/phone, purpose, jti, exp")
    token_type: str = "phone_verification"  # noqa: S105 - a kind, not a secret
    expires_in: int
    purpose: str


class PublicKey(BaseModel):
    alg: str
    kid: str
    public_key: str


def build_routes(flows: OtpFlows, signer: TokenSigner, settings: OtpSettings) -> Routes:
    routes = Routes()
    regions, purposes = settings.regions, settings.purposes

    def phone_and_purpose(raw_phone: str, raw_purpose: str) -> tuple[Phone, str]:
        try:
            phone = parse_phone(raw_phone, regions)
        except InvalidPhone as error:
            # The reason names no digits; the number itself is never echoed back.
            raise Problem(
                422,
                "the phone number cannot be used",
                errors=[{"field": "phone", "message": str(error)}],
            ) from None
        try:
            return phone, check_purpose(raw_purpose, purposes)
        except UnknownPurpose:
            raise Problem(
                422,
                "unknown purpose",
                errors=[{"field": "purpose", "message": "not an allowed purpose"}],
            ) from None

    proxies = settings.proxy_networks()

    def client_of(call: Call) -> str:
        forwarded_for = call.request.headers.get("X-Forwarded-For")
        return client_address(call.request.remote, forwarded_for, proxies)

    @routes.post("/api/otp/send", body=SendRequest, response=SendAccepted, status=202)
    async def send_code(call: Call) -> web.StreamResponse:
        """Send a one-time code by SMS, WhatsApp or voice; one answer whoever owns the number."""
        request = await call.body(SendRequest)
        phone, purpose = phone_and_purpose(request.phone, request.purpose)
        try:
            sent = await flows.send(phone, purpose, client_of(call), request.channel)
        except ChannelUnavailable:
            raise Problem(
                422,
                "this channel is not available",
                errors=[{"field": "channel", "message": "no provider offers it"}],
            ) from None
        except Limited as limited:
            detail = WAIT.get(limited.reason, "too many codes requested; try again later")
            raise too_many_requests(limited.retry_after_s, detail) from None
        except Undeliverable:
            raise Problem(422, "this number cannot receive SMS codes") from None
        except SmsDown:
            raise service_unavailable("the code could not be sent; try again shortly", 30) from None
        except RedisError:
            raise service_unavailable("codes cannot be issued right now", 5) from None
        return json_response(
            SendAccepted(expires_in=sent.expires_in, retry_after=sent.retry_after), status=202
        )

    @routes.post("/api/otp/verify", body=VerifyRequest, response=VerifyAnswer)
    async def verify_code(call: Call) -> web.StreamResponse:
        """Check a code (single use, a few attempts per caller); success returns a signed token.

        Wrong, expired or absent codes get one answer: `attempts_left` is the caller's own."""
        request = await call.body(VerifyRequest)
        phone, purpose = phone_and_purpose(request.phone, request.purpose)
        try:
            verified = await flows.verify(phone, purpose, request.otp, client_of(call))
        except WrongCode as wrong:
            raise Problem(
                400, "the code is wrong or has expired", attempts_left=wrong.attempts_left
            ) from None
        except EventNotRecorded:
            raise service_unavailable("verification failed; request a new code", 5) from None
        except RedisError:
            raise service_unavailable("codes cannot be checked right now", 5) from None
        return json_response(
            VerifyAnswer(token=verified.token, expires_in=verified.expires_in, purpose=purpose)
        )

    @routes.get("/api/otp/.well-known/jwks.json")
    async def jwks(call: Call) -> web.StreamResponse:
        """The key set that verifies phone-verification tokens."""
        return json_response(signer.jwks(), headers={"Cache-Control": "public, max-age=300"})

    @routes.get("/api/otp/public-key", response=PublicKey)
    async def public_key(call: Call) -> web.StreamResponse:
        """The PEM public key that verifies phone-verification tokens."""
        return json_response(PublicKey(alg="EdDSA", kid=signer.kid, public_key=signer.public_pem))

    add_prefix_routes(routes, flows.prefixes)
    add_receipt_routes(routes, flows.relay, settings)
    return routes
