"""Razorpay's QR Codes API (`/v1/payments/qr_codes`), as `razorpay.Client(...).qrcode` sees it.

A customer pays a QR Code in a UPI app, never through the API, so tests pay one with `pay()`,
then post the `qr_code.credited` webhook `RazorpayFake.build_webhook()` builds. A single_use
code closes once paid (`close_reason: paid`); any code past its `close_by` is closed.
With `image_content` set (an on-demand feature of a Razorpay account), a code also carries
the `upi://pay` link its image encodes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from aiohttp import web

from rtmn_fakes import razorpay_rules as rules
from rtmn_fakes.base import json_response
from rtmn_fakes.ids import next_id
from rtmn_fakes.payloads import load

BASE = "/v1/payments/qr_codes"


class QrCodes:
    def __init__(
        self,
        lock: threading.RLock,
        clock: Callable[[], float],
        payments: dict[str, dict[str, Any]],
    ) -> None:
        self._lock, self._clock, self._payments = lock, clock, payments
        self.codes: dict[str, dict[str, Any]] = {}
        self.of_payment: dict[str, str] = {}  # payment id -> the QR Code it paid
        self.image_content = False

    def reset(self) -> None:
        self.codes.clear()
        self.of_payment.clear()
        self.image_content = False

    def routes(self) -> list[web.RouteDef]:
        # Before the fake's /v1/payments/{id}, which would take "qr_codes" for a payment id.
        return [
            web.post(BASE, self._create),
            web.get(BASE, self._list),
            web.get(BASE + "/{id}", self._fetch),
            web.get(BASE + "/{id}/payments", self._code_payments),
            web.post(BASE + "/{id}/close", self._close),
        ]

    # -- test control -------------------------------------------------------------------------

    def pay(self, qr_id: str, amount: int | None = None) -> dict[str, Any]:
        """A customer paid the code from a UPI app; the payment is captured at once."""
        with self._lock:
            code = self._current(qr_id)
            if code is None:
                raise KeyError(qr_id)
            if code["status"] != "active":
                raise ValueError(f"QR Code {qr_id} is closed ({code['close_reason']})")
            paid = code["payment_amount"] if amount is None else amount
            if code["fixed_amount"] and paid != code["payment_amount"]:
                raise ValueError(f"QR Code {qr_id} takes {code['payment_amount']} only")
            now = int(self._clock())
            payment = load("razorpay", "api.payment_fetch.response.upi.json")
            payment.update(
                id=next_id("pay_"),
                amount=paid,
                currency="INR",
                order_id=None,
                invoice_id=None,
                status="captured",
                captured=True,
                description="QRv2 Payment",
                notes=code["notes"],
                created_at=now,
            )
            self._payments[payment["id"]] = payment
            self.of_payment[payment["id"]] = qr_id
            code["payments_amount_received"] += paid
            code["payments_count_received"] += 1
            if code["usage"] == "single_use":
                code.update(status="closed", closed_at=now, close_reason="paid")
            return dict(payment)

    # -- handlers -----------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        now = int(self._clock())
        try:
            body = rules.json_object(request)
            asked = rules.qr_code(body, now)
            notes = rules.qr_notes(body.get("notes"))
        except rules.RazorpayError as exc:
            return json_response(exc.body, exc.status)
        code = load("razorpay", "api.qr_code_create.response.json")
        code.update(
            id=next_id("qr_"),
            created_at=now,
            name=body.get("name"),
            usage=asked.usage,
            image_url=f"https://rzp.io/i/{next_id('')}",
            payment_amount=asked.payment_amount,
            description=body.get("description"),
            fixed_amount=asked.fixed_amount,
            notes=notes,
            customer_id=body.get("customer_id"),
            close_by=asked.close_by,
            closed_at=None,
            close_reason=None,
        )
        with self._lock:
            if self.image_content:
                code["image_content"] = _upi_link(code)
            self.codes[code["id"]] = code
            return json_response(code)

    async def _list(self, request: web.Request) -> web.Response:
        try:
            page = rules.page_query(request.query)
        except rules.RazorpayError as exc:
            return json_response(exc.body, exc.status)
        with self._lock:
            codes = [self._current(i) for i in list(self.codes)[::-1]]
            newest = sorted((c for c in codes if c is not None), key=lambda c: -c["created_at"])
            found = [c for c in newest if _within(c, page)]
            return _collection(found[page.skip : page.skip + page.count])

    async def _fetch(self, request: web.Request) -> web.Response:
        with self._lock:
            code = self._current(request.match_info["id"])
            return _missing() if code is None else json_response(code)

    async def _code_payments(self, request: web.Request) -> web.Response:
        try:
            page = rules.page_query(request.query)
        except rules.RazorpayError as exc:
            return json_response(exc.body, exc.status)
        qr_id = request.match_info["id"]
        with self._lock:
            if qr_id not in self.codes:
                return _missing(f"{qr_id} is not a valid id")
            paid = [self._payments[p] for p, q in self.of_payment.items() if q == qr_id][::-1]
            found = [p for p in paid if _within(p, page)]
            return _collection(found[page.skip : page.skip + page.count])

    async def _close(self, request: web.Request) -> web.Response:
        with self._lock:
            code = self._current(request.match_info["id"])
            if code is None:
                return _missing()
            if code["status"] == "closed":
                # Wording not published: Razorpay refuses to close a closed code.
                return json_response(rules.RazorpayError("QR code is already closed").body, 400)
            code.update(status="closed", closed_at=int(self._clock()), close_reason="on_demand")
            return json_response(code)

    def _current(self, qr_id: str) -> dict[str, Any] | None:
        """The code as it is now: one past its close_by has closed (no reason is published)."""
        code = self.codes.get(qr_id)
        if code is None:
            return None
        close_by = code["close_by"]
        if code["status"] == "active" and close_by is not None and self._clock() >= close_by:
            code.update(status="closed", closed_at=close_by)
        return code


def _upi_link(code: dict[str, Any]) -> str:
    """The link an image-content code carries, shaped as the docs' image-content sample."""
    rupees = Decimal(code["payment_amount"] or 0) / 100
    params = [
        ("pa", "rzr.qrrtmn00000001@icic"),
        ("pn", code["name"] or "Merchant"),
        ("tr", f"RZP{code['id'].removeprefix('qr_')}qrv2"),
        ("tn", code["description"] or "Payment"),
        ("cu", "INR"),
        ("mc", "5411"),
        ("am", f"{rupees:f}"),
    ]
    return "upi://pay?" + "&".join(f"{k}={quote(str(v), safe='@')}" for k, v in params)


def _within(entity: dict[str, Any], page: rules.Page) -> bool:
    created = entity["created_at"]
    return (page.since is None or created >= page.since) and (
        page.until is None or created <= page.until
    )


def _collection(items: list[dict[str, Any]]) -> web.Response:
    return json_response({"entity": "collection", "count": len(items), "items": items})


def _missing(description: str = "The id provided does not exist") -> web.Response:
    return json_response(rules.RazorpayError(description).body, 400)
