"""The HTTP bodies, as pydantic models (they also make the OpenAPI document)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
)

from payments.dispute_store import DisputeRow
from payments.refund_store import RefundRow
from payments.routing import Method
from payments.store import PaymentRow
from rtmn_shared.money import Currency

Gateway = Literal["razorpay", "stripe", "upi"]
# PostgreSQL's text refuses NUL: a request carrying one is refused here, as a 422.
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]


class CreatePayment(BaseModel):
    """A user names their order only; its terms (amount, currency, merchant, number, user) come
    from `order.placed`, or from this body when the caller has the `service` scope."""

    model_config = ConfigDict(extra="forbid")

    order_id: Text = Field(min_length=1, max_length=100)
    # Absent: routed by the order's currency and `method` (PAYMENT_ROUTES), with failover.
    gateway: Gateway | None = None
    method: Method | None = Field(default=None, description="how the customer will pay")
    # The order's terms: a `service` caller's create registers the order with them.
    order_number: Text | None = Field(default=None, min_length=1, max_length=100)
    merchant_id: Text | None = Field(default=None, min_length=1, max_length=100)
    amount: int | None = Field(
        default=None, gt=0, le=10**12, description="integer minor units (paise)"
    )
    currency: Currency | None = None
    user_id: Text | None = Field(
        default=None, min_length=1, max_length=200, description="whose order it is"
    )

    def terms(self) -> list[str]:
        """The order's terms this body sets."""
        return sorted(self.model_fields_set & ORDER_TERMS)

    @model_serializer(mode="wrap")
    def _as_before_routing(self, serialize: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Without a method a body serialises as before it existed: an Idempotency-Key's
        # fingerprint is the JSON of its body, so a retry across the deploy still replays.
        data: dict[str, Any] = serialize(self)
        if self.method is None:
            data.pop("method", None)
        return data


ORDER_TERMS = frozenset({"order_number", "merchant_id", "amount", "currency", "user_id"})


class VerifyPayment(BaseModel):
    razorpay_order_id: Text = Field(min_length=1, max_length=100)
    razorpay_payment_id: Text = Field(min_length=1, max_length=100)
    razorpay_signature: Text = Field(min_length=1, max_length=200)


class CreateRefund(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int | None = Field(default=None, gt=0, description="minor units; omit for the rest")
    reason: Text | None = Field(default=None, max_length=500)


class CapturePayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int | None = Field(
        default=None, gt=0, description="minor units, at most the authorized; omit for all of it"
    )


class VoidPayment(BaseModel):
    """No fields yet: `{}`."""

    model_config = ConfigDict(extra="forbid")


class UpiQuery(BaseModel):
    format: Literal["svg", "png"] | None = None


class RefundView(BaseModel):
    refund_id: str
    payment_id: str
    amount: int
    status: str
    gateway_refund_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, refund: RefundRow) -> RefundView:
        return cls(
            refund_id=refund.id,
            payment_id=refund.payment_id,
            amount=refund.amount,
            status=refund.status.value,
            gateway_refund_id=refund.gateway_refund_id,
            created_at=refund.created_at,
        )


class DisputeView(BaseModel):
    dispute_id: str
    gateway_dispute_id: str
    amount: int
    currency: str
    reason: str | None
    status: Literal["open", "under_review", "won", "lost", "closed"]
    phase: str | None
    evidence_due_by: datetime | None
    opened_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, dispute: DisputeRow) -> DisputeView:
        return cls(
            dispute_id=dispute.id,
            gateway_dispute_id=dispute.gateway_dispute_id,
            amount=dispute.amount,
            currency=dispute.currency,
            reason=dispute.reason,
            status=dispute.status.value,
            phase=dispute.phase,
            evidence_due_by=dispute.evidence_due_by,
            opened_at=dispute.opened_at,
            updated_at=dispute.updated_at,
        )


class PaymentView(BaseModel):
    payment_id: str
    status: str
    order_id: str
    order_number: str
    merchant_id: str
    amount: int
    currency: str
    gateway: str
    gateway_order_id: str | None
    gateway_payment_id: str | None
    captured_amount: int
    refunded_total: int
    error_code: str | None
    paid_at: datetime | None
    created_at: datetime
    refunds: list[RefundView]
    # Chargebacks and inquiries reported by the gateway; the payment's status does not change.
    disputes: list[DisputeView] = Field(default_factory=list)

    @classmethod
    def of(
        cls, payment: PaymentRow, refunds: list[RefundRow], disputes: Sequence[DisputeRow] = ()
    ) -> PaymentView:
        return cls(
            payment_id=payment.id,
            status=payment.status.value,
            order_id=payment.order_id,
            order_number=payment.order_number,
            merchant_id=payment.merchant_id,
            amount=payment.amount,
            currency=payment.currency,
            gateway=payment.gateway,
            gateway_order_id=payment.gateway_order_id,
            gateway_payment_id=payment.gateway_payment_id,
            captured_amount=payment.captured_amount,
            refunded_total=payment.refunded_total,
            error_code=payment.error_code,
            paid_at=payment.paid_at,
            created_at=payment.created_at,
            refunds=[RefundView.of(r) for r in refunds],
            disputes=[DisputeView.of(d) for d in disputes],
        )


class UpiLink(BaseModel):
    """A UPI payment's QR code at the gateway, which receives the money and confirms it."""

    link: str | None = Field(
        description="the upi://pay link the gateway's code encodes, where the gateway gives it"
    )
    qr_svg: str | None = Field(description="our QR code of `link`, as SVG; null without a link")
    qr_png: str | None = Field(description="our QR code of `link`, as PNG; null without a link")
    image_url: str | None = Field(description="the gateway's own image of the code")
    qr_code_id: str
    close_by: datetime | None = Field(description="when the code stops taking the payment")
    status: str = Field(description="active, closed (paid or expired), or sandbox")


class CreatedPayment(BaseModel):
    payment_id: str
    status: str
    amount: int
    currency: str
    gateway: Gateway
    gateway_order_id: str
    checkout: dict[str, str] = Field(description="what the client needs to pay")
    upi: UpiLink | None = None


class WebhookAck(BaseModel):
    # refused: older than the dedupe window (DEDUPE_WINDOW_DAYS), so not applied; see `reason`.
    status: Literal["processed", "duplicate", "refused"]
    reason: str | None = None
