"""Delivery receipts: Twilio's status callbacks (signed with X-Twilio-Signature) and MSG91's
delivery-report webhook (unsigned: a secret key in its URL is the only proof), each mapped once
to delivered / failed / pending and handed to the relay."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from aiohttp import web
from twilio.request_validator import RequestValidator

from otp.relay import Outcome, Relay
from otp.settings import OtpSettings
from rtmn_shared.web.problems import Problem
from rtmn_shared.web.routes import Call, Routes

log = logging.getLogger(__name__)

TWILIO_PATH = "/api/otp/receipts/twilio"
MSG91_PATH = "/api/otp/receipts/msg91"
FORM = ("application/x-www-form-urlencoded",)

# Messages: https://www.twilio.com/docs/messaging/api/message-resource#message-status-values;
# calls: completed, or busy / no-answer / failed / canceled.
TWILIO_OUTCOMES: dict[str, Outcome] = {
    "delivered": "delivered",
    "read": "delivered",
    "completed": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "busy": "failed",
    "no-answer": "failed",
    "canceled": "failed",
}
# MSG91 report status: 1 delivered, 2 failed, 9 NDNC, 16 and 25 rejected, 17 blocked number.
MSG91_OUTCOMES: dict[str, Outcome] = {
    "1": "delivered",
    "2": "failed",
    "9": "failed",
    "16": "failed",
    "17": "failed",
    "25": "failed",
}


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


def _twilio_route(routes: Routes, relay: Relay | None, twilio: tuple[str, str, str] | None) -> None:
    """`twilio`: (account sid, auth token, the callback URL as Twilio was given it)."""
    validator = RequestValidator(twilio[1]) if twilio else None

    @routes.post(TWILIO_PATH, status=204, content_types=FORM)
    async def twilio_receipt(call: Call) -> web.StreamResponse:
        """Twilio's status callback for a code's SMS, WhatsApp message or call (signed)."""
        if relay is None or twilio is None or validator is None:
            raise _off()
        account_sid, _, url = twilio
        form = await call.request.post()
        params = {key: str(value) for key, value in form.items()}
        signature = call.request.headers.get("X-Twilio-Signature", "")
        # Signed over the URL Twilio was given (ours, not as a proxy rewrote it) + sorted params.
        if not signature or not validator.validate(url, params, signature):
            raise Problem(403, "the X-Twilio-Signature does not match")
        if params.get("AccountSid") != account_sid:
            raise Problem(403, "the callback is for another account")
        if "MessageSid" in params:
            sid, status = params["MessageSid"], params.get("MessageStatus", "")
        elif "CallSid" in params:
            sid, status = params["CallSid"], params.get("CallStatus", "")
        else:
            raise Problem(400, "a MessageSid or CallSid is required")
        done = await relay.report("twilio", sid, TWILIO_OUTCOMES.get(status, "pending"))
        log.info("otp receipt", extra={"provider": "twilio", "status": status, "did": done})
        return web.Response(status=204)


def _msg91_route(routes: Routes, relay: Relay | None, key: str | None) -> None:
    @routes.post(MSG91_PATH, status=204, content_types=FORM)
    async def msg91_receipt(call: Call) -> web.StreamResponse:
        """MSG91's delivery-report webhook (v2: a form whose `data` is a JSON list of requests).

        MSG91 does not sign it: the `key` in the configured URL must match."""
        if relay is None or key is None:
            raise _off()
        if not hmac.compare_digest(call.request.query.get("key", "").encode(), key.encode()):
            raise Problem(403, "unknown report key")
        form = await call.request.post()
        try:
            requests: Any = json.loads(str(form.get("data", "")))
        except ValueError:
            raise Problem(400, "`data` must be the JSON list of reports") from None
        reports = _msg91_reports(requests)  # all read before any acts: bad input changes nothing
        for request_id, status in reports:
            done = await relay.report("msg91", request_id, MSG91_OUTCOMES.get(status, "pending"))
            log.info("otp receipt", extra={"provider": "msg91", "status": status, "did": done})
        return web.Response(status=204)


def _msg91_reports(requests: Any) -> list[tuple[str, str]]:
    """(requestId, status) of every report in MSG91's `data`."""
    if not isinstance(requests, list):
        raise Problem(400, "`data` must be the JSON list of reports")
    reports = []
    for request in requests:
        if not isinstance(request, dict) or not isinstance(request.get("requestId"), str):
            raise Problem(400, "each report needs its requestId")
        entries = request.get("report")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise Problem(400, "each request needs its list of reports")
        reports += [(request["requestId"], str(e.get("status", ""))) for e in entries]
    return reports
