"""Helpers payments' tests share, importable and typed (a uniquely named module: tests dirs
share one sys.path): the settings the tests run with, and `Api`, the calls tests make."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from payments import orders
from payments.order_store import Order
from payments.settings import Settings
from rtmn_fakes.razorpay import RazorpayFake, webhook_headers
from rtmn_fakes.stripe import StripeFake
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import OrderPlaced
from rtmn_shared.testing.infra import Suite

RZP_KEY_ID = "rzp_test_payments0001"
RZP_KEY_SECRET = "rzp_key_secret_for_tests"
RZP_WEBHOOK_SECRET = "whsec_razorpay_current"
RZP_WEBHOOK_PREVIOUS = "whsec_razorpay_previous"
STRIPE_KEY = "sk_test_payments000000000000000"
STRIPE_WEBHOOK_SECRET = "whsec_stripe_tests"
STRIPE_WEBHOOK_PREVIOUS = "whsec_stripe_previous"
GATEWAY_TIMEOUT = 1.0


def settings_for(razorpay: RazorpayFake, stripe: StripeFake, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "razorpay_key_id": RZP_KEY_ID,
        "razorpay_key_secret": RZP_KEY_SECRET,
        "razorpay_webhook_secret": RZP_WEBHOOK_SECRET,
        "razorpay_webhook_secret_previous": RZP_WEBHOOK_PREVIOUS,
        "razorpay_webhook_secret_previous_until": datetime.now(UTC) + timedelta(hours=1),
        "razorpay_api_base": razorpay.url,
        "stripe_secret_key": STRIPE_KEY,
        "stripe_webhook_secret": STRIPE_WEBHOOK_SECRET,
        "stripe_webhook_secret_previous": STRIPE_WEBHOOK_PREVIOUS,
        "stripe_webhook_secret_previous_until": datetime.now(UTC) + timedelta(hours=1),
        "stripe_api_base": stripe.url,
        "gateway_timeout_seconds": GATEWAY_TIMEOUT,
        # Tests fail the gateways on purpose, one after another, on one shared service: its
        # breakers never open. test_routing starts a service of its own to open one.
        "gateway_breaker_failures": 1_000,
        "upi_payee_name": "RTMN Stores",
        # Tests run reconciliation passes themselves; the background loop finds nothing young.
        "reconcile_after_seconds": 86_400,
        "reconcile_interval_seconds": 3_600,
    }
    values.update(changes)
    return Settings(**values)


class Api:
    """The calls tests make, through HTTP, and what they read back."""

    webhook_secret = RZP_WEBHOOK_SECRET
    previous_webhook_secret = RZP_WEBHOOK_PREVIOUS
    key_secret = RZP_KEY_SECRET
    stripe_webhook_secret = STRIPE_WEBHOOK_SECRET
    previous_stripe_webhook_secret = STRIPE_WEBHOOK_PREVIOUS

    def __init__(
        self,
        client: TestClient,  # type: ignore[type-arg]
        suite: Suite,
        pool: Pool,
        razorpay: RazorpayFake,
        stripe: StripeFake,
    ) -> None:
        self.client = client
        self.suite = suite
        self.pool = pool
        self.razorpay = razorpay
        self.stripe = stripe

    def settings(self, **changes: Any) -> Settings:
        return settings_for(self.razorpay, self.stripe, **changes)

    async def events(self, payment_id: str, type: str | None = None) -> list[dict[str, Any]]:
        """The `data` of every event the service put in its outbox about a payment."""
        rows = await self.pool.fetch(
            "SELECT type, payload::text AS payload FROM outbox WHERE subject = $1 ORDER BY id",
            payment_id,
        )
        return [
            orjson.loads(r["payload"])["data"] for r in rows if type is None or r["type"] == type
        ]

    async def place_order(
        self, user: str, order_id: str, *, amount: int = 50_000, currency: str = "INR"
    ) -> None:
        """The order as the commerce side's `order.placed` records it (the consumer's code)."""
        order = Order(order_id, "R-1001", user, "m_42", amount, currency)
        async with self.pool.acquire() as conn:
            await orders.placed(conn, f"evt-{uuid.uuid4().hex}", order_placed(order))

    async def create(
        self,
        user: str,
        *,
        gateway: str = "razorpay",
        amount: int = 50_000,
        currency: str = "INR",
        key: str | None = None,
        order_id: str | None = None,
        traceparent: str | None = None,
    ) -> ClientResponse:
        """A user's create for an order placed first (as `order.placed` would have)."""
        order_id = order_id or f"ord_{uuid.uuid4().hex[:8]}"
        await self.place_order(user, order_id, amount=amount, currency=currency)
        return await self.pay(user, order_id, gateway=gateway, key=key, traceparent=traceparent)

    async def pay(
        self,
        user: str,
        order_id: str,
        *,
        gateway: str = "razorpay",
        key: str | None = None,
        traceparent: str | None = None,
    ) -> ClientResponse:
        """A user's create: the order's id only."""
        headers = self.suite.bearer(user)
        if key is not None:
            headers["Idempotency-Key"] = key
        if traceparent is not None:
            headers["traceparent"] = traceparent
        body = {"order_id": order_id, "gateway": gateway}
        return await self.client.post("/api/payments/create", json=body, headers=headers)

    async def created(self, user: str, **options: Any) -> dict[str, Any]:
        response = await self.create(user, **options)
        assert response.status == 201, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def paid(self, user: str, **options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """A payment created here and paid at Razorpay; its webhook is the test's to send."""
        created = await self.created(user, **options)
        return created, self.razorpay.capture(created["gateway_order_id"])

    async def captured(self, user: str, **options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """A payment created here, paid at Razorpay and captured by its signed webhook."""
        created, paid = await self.paid(user, **options)
        webhook = self.razorpay.build_webhook("payment.captured", payment_id=paid["id"])
        assert (await self.razorpay_webhook(webhook)).status == 200
        return created, paid

    async def deliveries_recorded(self, *event_ids: str) -> int:
        """How many of these webhook deliveries are recorded as seen."""
        count: int = await self.pool.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE event_id = ANY($1)", list(event_ids)
        )
        return count

    async def get(self, payment_id: str, user: str = "support_1") -> dict[str, Any]:
        scopes = "payments:read-any" if user.startswith("support") else ""
        response = await self.client.get(
            f"/api/payments/{payment_id}", headers=self.suite.bearer(user, scopes)
        )
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def razorpay_webhook(
        self,
        body: bytes,
        *,
        secret: str = RZP_WEBHOOK_SECRET,
        event_id: str | None = None,
        client: TestClient | None = None,  # type: ignore[type-arg]
    ) -> ClientResponse:
        headers = webhook_headers(body, secret, event_id)
        return await (client or self.client).post(
            "/api/webhooks/razorpay", data=body, headers=headers
        )

    async def refund(
        self, payment_id: str, amount: int | None = None, key: str | None = None
    ) -> ClientResponse:
        headers = self.suite.bearer("ops_1", "payments:refund")
        if key is not None:
            headers["Idempotency-Key"] = key
        body = {} if amount is None else {"amount": amount}
        return await self.client.post(
            f"/api/payments/{payment_id}/refunds", json=body, headers=headers
        )


def order_placed(order: Order) -> OrderPlaced:
    return OrderPlaced(
        order_id=order.order_id,
        order_number=order.order_number,
        user_id=order.user_id,
        merchant_id=order.merchant_id,
        amount=order.amount,
        currency=order.currency,
    )
