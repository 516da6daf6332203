"""HTTP handlers, thin: read the request, call the flow, shape the answer."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from payments import (
    checkout,
    dispute_store,
    inbound,
    lifecycle,
    orders,
    refund_store,
    refunds,
    store,
    upi,
    webhooks,
)
from payments.idempotency import Reply, key_of, once
from payments.key_store import Key
from payments.providers.gateway import GatewayRejected, Gateways, GatewayUnavailable, UpiQr
from payments.providers.razorpay import webhooks as razorpay_webhooks
from payments.providers.stripe import webhooks as stripe_webhooks
from payments.routing import Router
from payments.schemas import (
    CapturePayment,
    CreatedPayment,
    CreatePayment,
    CreateRefund,
    PaymentView,
    RefundView,
    UpiLink,
    UpiQuery,
    VerifyPayment,
    VoidPayment,
    WebhookAck,
)
from payments.store import Delivery
from rtmn_shared.db import Pool
from rtmn_shared.dedupe import DEFAULT_WINDOW, DedupeWindow
from rtmn_shared.events.wakeup import UnitOfWork
from rtmn_shared.web.auth import Caller
from rtmn_shared.web.bodies import read_capped
from rtmn_shared.web.problems import Problem
from rtmn_shared.web.ratelimit import Limit, RateLimiter
from rtmn_shared.web.routes import USER, Call, Routes, json_response

log = logging.getLogger(__name__)

REFUND = "payments:refund"  # operators and support: refund any payment
CAPTURE = "payments:capture"  # operators: capture or void an authorized payment
READ_ANY = "payments:read-any"  # support: read anyone's payment and its UPI link
PAYMENT_ID = re.compile(r"pmt_[0-9a-f]{32}")
_ACK = {True: b'{"status":"processed"}', False: b'{"status":"duplicate"}'}


@dataclass(frozen=True)
class Deps:
    unit: UnitOfWork
    inbound: inbound.Inbound
    gateways: Gateways
    router: Router
    limiter: RateLimiter
    create_limit: Limit
    razorpay_key_secret: str | None
    razorpay_secrets: webhooks.Secrets
    stripe_secrets: webhooks.Secrets
    window: DedupeWindow = DEFAULT_WINDOW
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def build_routes(deps: Deps) -> Routes:
    routes = Routes()
    pool = deps.unit.pool

    @routes.post("/api/payments/create", body=CreatePayment, response=CreatedPayment, status=201,
                 auth=USER)  # fmt: skip
    async def create_payment(call: Call) -> web.StreamResponse:
        """Pay an order (a service caller sets its terms); 200: its open payment; keys honoured."""
        request = await call.body(CreatePayment)
        user, terms = orders.order_terms(call.user, request)
        reply = await checkout.create(
            _key(call, b"create " + request.model_dump_json().encode()),
            user,
            request,
            terms,
            pool=pool,
            router=deps.router,
            limiter=deps.limiter,
            limit=deps.create_limit,
        )
        return _reply(reply)

    @routes.post("/api/payments/verify", body=VerifyPayment, response=PaymentView, auth=USER)
    async def verify_payment(call: Call) -> web.StreamResponse:
        """Razorpay checkout callback: the signature over our order id and the payment id."""
        request = await call.body(VerifyPayment)
        if deps.razorpay_key_secret is None:
            raise Problem(503, "Razorpay is not configured: checkout cannot be verified")
        payment = await checkout.verify(
            deps.unit, deps.gateways, deps.razorpay_key_secret, call.user.user_id, request
        )
        return await _view(pool, payment.id)

    @routes.get("/api/payments/{payment_id}", response=PaymentView, auth=USER)
    async def get_payment(call: Call) -> web.StreamResponse:
        """A payment's status, amounts and refunds; anyone's with `payments:read-any`."""
        payment = await _owned(pool, _payment_id(call), call.user)
        return await _view(pool, payment.id)

    @routes.post("/api/payments/{payment_id}/refunds", body=CreateRefund, response=RefundView,
                 status=201, auth=REFUND)  # fmt: skip
    async def create_refund(call: Call) -> web.StreamResponse:
        """A full (no amount) or partial refund (`payments:refund`); Idempotency-Key honoured."""
        request = await call.body(CreateRefund)
        payment_id = _payment_id(call)
        reply = await once(
            pool,
            _key(call, f"refund {payment_id} ".encode() + request.model_dump_json().encode()),
            lambda claim: refunds.request_refund(
                claim, payment_id, request, unit=deps.unit, gateways=deps.gateways
            ),
        )
        return _reply(reply)

    @routes.get("/api/payments/{payment_id}/upi", query=UpiQuery, response=UpiLink, auth=USER)
    async def upi_link(call: Call) -> web.StreamResponse:
        """The UPI payment's QR code at the gateway, and our QR of its link (`?format=svg|png`);
        anyone's with `payments:read-any`."""
        kind = call.query(UpiQuery).format
        payment = await _owned(pool, _payment_id(call), call.user)
        qr = await _upi_qr(deps.gateways, payment)
        if kind is None:
            return json_response(upi.view(payment.id, qr))
        if qr.link is None:
            raise Problem(404, "the gateway gave no upi:// link for this QR code: show image_url")
        return web.Response(body=upi.qr_code(qr.link, kind), content_type=upi.CONTENT_TYPES[kind])

    @routes.post("/api/webhooks/razorpay", response=WebhookAck)
    async def razorpay_webhook(call: Call) -> web.StreamResponse:
        """Razorpay webhooks: HMAC over the raw body, deduplicated on event id and body digest."""
        body = await read_capped(call.request, webhooks.MAX_BODY_BYTES)
        headers = call.request.headers
        try:
            razorpay_webhooks.verify(
                body, headers.get("X-Razorpay-Signature"), deps.razorpay_secrets, deps.clock()
            )
            event_id = headers.get("X-Razorpay-Event-Id")
            if not event_id:
                raise webhooks.BadWebhook("the X-Razorpay-Event-Id header is missing")
            event_type, created, command = razorpay_webhooks.parse(body)
        except webhooks.BadWebhook as error:
            raise Problem(400, str(error)) from None
        digest = hashlib.sha256(body).digest()
        delivery = Delivery("razorpay", event_id, event_type, created, digest)
        return await _apply(deps, delivery, command)

    @routes.post("/api/webhooks/stripe", response=WebhookAck)
    async def stripe_webhook(call: Call) -> web.StreamResponse:
        """Stripe webhooks: Stripe-Signature checked by the SDK, deduplicated on the event id."""
        body = await read_capped(call.request, webhooks.MAX_BODY_BYTES)
        try:
            event_id, event_type, created, command = stripe_webhooks.parse(
                body,
                call.request.headers.get("Stripe-Signature"),
                deps.stripe_secrets,
                deps.clock(),
            )
        except webhooks.BadWebhook as error:
            raise Problem(400, str(error)) from None
        return await _apply(deps, Delivery("stripe", event_id, event_type, created), command)

    return _lifecycle_routes(routes, deps)


def _lifecycle_routes(routes: Routes, deps: Deps) -> Routes:
    """Capture and void of authorized payments (`payments:capture`)."""
    pool = deps.unit.pool

    @routes.post("/api/payments/{payment_id}/capture", body=CapturePayment, response=PaymentView,
                 auth=CAPTURE)  # fmt: skip
    async def capture_payment(call: Call) -> web.StreamResponse:
        """Capture an authorized payment, all or `amount` of it (`payments:capture`); keys
        honoured, and a captured payment is answered as it is."""
        request = await call.body(CapturePayment)
        payment_id = _payment_id(call)
        log.info("payment %s: capture asked by %s", payment_id, call.user.user_id)
        reply = await once(
            pool,
            _key(call, f"capture {payment_id} ".encode() + request.model_dump_json().encode()),
            lambda claim: lifecycle.capture(
                claim, payment_id, request, unit=deps.unit, gateways=deps.gateways
            ),
        )
        return _reply(reply)

    @routes.post("/api/payments/{payment_id}/void", body=VoidPayment, response=PaymentView,
                 auth=CAPTURE)  # fmt: skip
    async def void_payment(call: Call) -> web.StreamResponse:
        """Release an authorized payment uncaptured (`payments:capture`); keys honoured, and a
        voided payment is answered as it is."""
        request = await call.body(VoidPayment)
        payment_id = _payment_id(call)
        log.info("payment %s: void asked by %s", payment_id, call.user.user_id)
        reply = await once(
            pool,
            _key(call, f"void {payment_id} ".encode() + request.model_dump_json().encode()),
            lambda claim: lifecycle.void(claim, payment_id, unit=deps.unit, gateways=deps.gateways),
        )
        return _reply(reply)

    return routes


async def _apply(deps: Deps, delivery: Delivery, command: webhooks.Command) -> web.Response:
    """A 200 in every case: processed, a duplicate, or refused as past the dedupe window, which a
    retry cannot change (a non-2xx would have the provider retry it for a day or three, and then
    disable the endpoint). Reconciliation still settles any payment such an event was about."""
    reason = _refusal(deps, delivery)
    if reason is not None:
        log.warning("webhook %s %s refused: %s", delivery.provider, delivery.event_id, reason)
        return json_response(WebhookAck(status="refused", reason=reason))
    fresh = await deps.inbound.handle(delivery, command)
    return web.Response(body=_ACK[fresh], content_type="application/json")


def _refusal(deps: Deps, delivery: Delivery) -> str | None:
    now = deps.clock()
    if not deps.window.accepts(delivery.created, now):
        return deps.window.refusal(delivery.created)
    if delivery.provider == "razorpay" and now - delivery.created > razorpay_webhooks.MAX_AGE:
        return razorpay_webhooks.TOO_OLD
    return None


async def _upi_qr(gateways: Gateways, payment: store.PaymentRow) -> UpiQr:
    if payment.gateway != "upi":
        raise Problem(422, "not a UPI payment: create one with gateway upi for its QR code")
    unavailable = gateways.unavailable("upi")
    if unavailable is not None:
        raise Problem(503, f"upi payments are not configured: {unavailable}")
    if payment.gateway_order_id is None:  # its create is still asking the gateway
        raise Problem(503, "the QR code is not made yet; retry", headers={"Retry-After": "2"})
    try:
        return await gateways.upi().qr_code(payment.gateway_order_id)
    except GatewayUnavailable:
        raise Problem(
            503, "the payment gateway did not answer", headers={"Retry-After": "5"}
        ) from None
    except GatewayRejected as error:
        log.warning("payment %s: the gateway refused its QR code: %s", payment.id, error)
        raise Problem(502, "the payment gateway refused to show the QR code") from None


def _key(call: Call, fingerprint: bytes) -> Key | None:
    return key_of(call.user.user_id, call.request.headers.get("Idempotency-Key"), fingerprint)


def _payment_id(call: Call) -> str:
    """Our ids only: anything else (a NUL, a stranger's id) is simply not found."""
    payment_id = call.path("payment_id")
    if not PAYMENT_ID.fullmatch(payment_id):
        raise Problem(404, "no such payment")
    return payment_id


async def _owned(pool: Pool, payment_id: str, caller: Caller) -> store.PaymentRow:
    async with pool.acquire() as conn:
        payment = await store.get_payment(conn, payment_id)
    if payment is None or (payment.user_id != caller.user_id and not caller.has(READ_ANY)):
        raise Problem(404, "no such payment")
    return payment


async def _view(pool: Pool, payment_id: str) -> web.Response:
    async with pool.acquire() as conn:
        payment = await store.get_payment(conn, payment_id)
        assert payment is not None
        found = await refund_store.refunds_of(conn, payment_id)
        disputes = await dispute_store.disputes_of(conn, payment_id)
    return json_response(PaymentView.of(payment, found, disputes))


def _reply(reply: Reply) -> web.Response:
    headers = {"Idempotent-Replayed": "true"} if reply.replayed else None
    return json_response(reply.body, status=reply.status, headers=headers)
