"""Delivery receipts: the routes of Twilio's status callbacks and MSG91's delivery-report webhook.

Each provider's module checks its receipts and reads them once into `DeliveryReport`s
(`providers/twilio.py`, `providers/msg91.py`); here they are refused as problems or handed to
the relay."""

from __future__ import annotations

import logging

from aiohttp import web

from otp.providers import BadReport, DeliveryReport
from otp.providers.msg91 import delivery_reports, report_key_matches
from otp.providers.twilio import StatusCallbacks
from otp.relay import Relay
from otp.settings import OtpSettings
from rtmn_shared.web.problems import Problem
from rtmn_shared.web.routes import Call, Routes

log = logging.getLogger(__name__)

TWILIO_PATH = "/api/otp/receipts/twilio"
MSG91_PATH = "/api/otp/receipts/msg91"
FORM = ("application/x-www-form-urlencoded",)


def twilio_callback_url(public_url: str) -> str:
    return public_url.rstrip("/") + TWILIO_PATH


def add_receipt_routes(routes: Routes, relay: Relay | None, settings: OtpSettings) -> None:
    """Both receipt routes, always declared (one OpenAPI document whatever the deployment);
    a provider that cannot report back to us gets 404 there."""
    sid, token = settings.twilio_account_sid, settings.twilio_auth_token
    twilio = None
    if relay is not None and sid and token and settings.otp_public_url:
        twilio = (sid, token.get_secret_value(), twilio_callback_url(settings.otp_public_url))
    key = settings.otp_msg91_report_key
    _twilio_route(routes, relay, twilio)
    _msg91_route(routes, relay, key.get_secret_value() if relay is not None and key else None)


def _off() -> Problem:
    return Problem(404, "delivery receipts are not configured for this provider")


def _refused(error: BadReport) -> Problem:
    return Problem(error.status, error.detail)


async def _hand_over(relay: Relay, provider: str, report: DeliveryReport) -> None:
    done = await relay.report(provider, report.message_id, report.outcome)
    log.info("otp receipt", extra={"provider": provider, "status": report.status, "did": done})


def _twilio_route(routes: Routes, relay: Relay | None, twilio: tuple[str, str, str] | None) -> None:
    """`twilio`: (account sid, auth token, the callback URL as Twilio was given it)."""
    callbacks = StatusCallbacks(*twilio) if twilio else None

    @routes.post(TWILIO_PATH, status=204, content_types=FORM)
    async def twilio_receipt(call: Call) -> web.StreamResponse:
        """Twilio's status callback for a code's SMS, WhatsApp message or call (signed)."""
        if relay is None or callbacks is None:
            raise _off()
        form = await call.request.post()
        params = {key: str(value) for key, value in form.items()}
        try:
            report = callbacks.read(params, call.request.headers.get("X-Twilio-Signature", ""))
        except BadReport as error:
            raise _refused(error) from None
        await _hand_over(relay, "twilio", report)
        return web.Response(status=204)


def _msg91_route(routes: Routes, relay: Relay | None, key: str | None) -> None:
    @routes.post(MSG91_PATH, status=204, content_types=FORM)
    async def msg91_receipt(call: Call) -> web.StreamResponse:
        """MSG91's delivery-report webhook (v2: a form whose `data` is a JSON list of requests).

        MSG91 does not sign it: the `key` in the configured URL must match."""
        if relay is None or key is None:
            raise _off()
        if not report_key_matches(call.request.query.get("key", ""), key):
            raise Problem(403, "unknown report key")
        form = await call.request.post()
        try:
            reports = delivery_reports(str(form.get("data", "")))
        except BadReport as error:
            raise _refused(error) from None
        for report in reports:
            await _hand_over(relay, "msg91", report)
        return web.Response(status=204)
