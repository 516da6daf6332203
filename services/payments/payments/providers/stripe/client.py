"""Stripe on its official SDK's async methods over aiohttp, with our own fixed idempotency keys."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Literal, TypeVar, cast

import stripe
from stripe.params import PaymentIntentCreateParams

from payments.domain import RefundStatus, Signal
from payments.providers.gateway import (
    STRIPE_LIMITS,
    CaptureRequest,
    Checkout,
    GatewayRejected,
    GatewayUnavailable,
    NewPayment,
    RefundRequest,
    RefundState,
)
from payments.providers.stripe.wire import PaymentIntent, intent_signal

log = logging.getLogger(__name__)
T = TypeVar("T")
CancelReason = Literal["abandoned", "requested_by_customer"]

REFUND_STATUS = {
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "succeeded": RefundStatus.PROCESSED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.FAILED,
}


class StripeGateway:
    name = "stripe"
    live = True
    idempotent_open = True
    closes_orders = True  # an intent cancelled takes no payment
    limits = STRIPE_LIMITS

    def __init__(
        self,
        secret_key: str,
        *,
        timeout: float,
        base_url: str | None = None,
        manual_capture: bool = False,
    ) -> None:
        self.timeout = timeout
        self.manual_capture = manual_capture
        self._http = stripe.AIOHTTPClient(timeout=timeout)
        # The SDK's own retries would add a fresh key per POST; reconciliation is our retry.
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": base_url} if base_url else {},
            http_client=self._http,
            max_network_retries=0,
        )

    async def shutdown(self) -> None:
        """Closes the HTTP client (`close` is the gateway's: an expired payment's intent)."""
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def open(self, payment: NewPayment, existing: str | None = None) -> Checkout:
        params: PaymentIntentCreateParams = {
            "amount": payment.amount,
            "currency": payment.currency.lower(),
            "metadata": {
                "payment_id": payment.payment_id,
                "order_id": payment.order_id,
                "order_number": payment.order_number,
                "merchant_id": payment.merchant_id,
            },
        }
        if self.manual_capture:
            params["capture_method"] = "manual"
        # Asked again even for an existing intent: the fixed key returns it with its secret.
        intent = await self._call(
            self._client.v1.payment_intents.create_async(
                params,
                # Fixed per payment: a repeat after a timeout returns the first intent.
                {"idempotency_key": f"rtmn-payment-{payment.payment_id}"},
            )
        )
        return Checkout(intent.id, {"client_secret": intent.client_secret or ""})

    async def find(self, payment: NewPayment) -> Checkout | None:
        return None  # `open` repeats the create under its fixed key: Stripe returns the first

    async def status(self, gateway_order_id: str) -> Signal | None:
        intent = await self._call(self._client.v1.payment_intents.retrieve_async(gateway_order_id))
        return intent_signal(cast(PaymentIntent, intent.to_dict()))

    async def refund(self, request: RefundRequest) -> RefundState:
        refund = await self._call(
            self._client.v1.refunds.create_async(
                {
                    "payment_intent": request.gateway_order_id,
                    "amount": request.amount,
                    "metadata": {"refund_id": request.refund_id, "payment_id": request.payment_id},
                },
                {"idempotency_key": f"rtmn-refund-{request.refund_id}"},
            )
        )
        return RefundState(refund.id, REFUND_STATUS.get(refund.status or "", RefundStatus.PENDING))

    async def refund_status(self, gateway_refund_id: str) -> RefundState:
        refund = await self._call(self._client.v1.refunds.retrieve_async(gateway_refund_id))
        return RefundState(refund.id, REFUND_STATUS.get(refund.status or "", RefundStatus.PENDING))

    async def capture(self, request: CaptureRequest) -> Signal:
        intent = await self._call(
            self._client.v1.payment_intents.capture_async(
                request.gateway_order_id,
                {"amount_to_capture": request.amount},
                # Fixed per payment: a repeat returns the first capture, never a second one.
                {"idempotency_key": f"rtmn-capture-{request.payment_id}"},
            )
        )
        signal = intent_signal(cast(PaymentIntent, intent.to_dict()))
        if signal is None:
            raise GatewayUnavailable(f"capture left the intent {intent.status}")
        return signal

    async def void(self, request: CaptureRequest) -> None:
        await self._cancel(request.gateway_order_id, "requested_by_customer")

    async def close(self, gateway_order_id: str) -> None:
        await self._cancel(gateway_order_id, "abandoned")

    async def _cancel(self, intent_id: str, reason: CancelReason) -> None:
        # Stripe cancels an intent once; a repeat is refused as `payment_intent_unexpected_state`.
        try:
            await self._call(
                self._client.v1.payment_intents.cancel_async(
                    intent_id,
                    {"cancellation_reason": reason},
                    {"idempotency_key": f"rtmn-cancel-{intent_id}"},
                )
            )
        except GatewayRejected:
            intent = await self._call(self._client.v1.payment_intents.retrieve_async(intent_id))
            if intent.status != "canceled":
                raise

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except TimeoutError:
            raise GatewayUnavailable("timeout") from None
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as error:
            log.warning("stripe call failed: %s", type(error).__name__)
            raise GatewayUnavailable(type(error).__name__) from None
        except stripe.StripeError as error:
            raise GatewayRejected(error.user_message or type(error).__name__) from None
