"""What Razorpay sends (the fields we read), and its payment entity in our words, once.

A payment entity reaches us two ways, as the same JSON: in the answers of the REST API
(validated here by pydantic) and inside a webhook's payload (read as sent, each field converted
where it is read). Both become a `Signal` through `signal` alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, NotRequired, TypeVar

from pydantic import BaseModel, RootModel
from typing_extensions import TypedDict

from payments.domain import Authorized, Captured, Failed, Signal, Voided
from payments.providers.gateway import UpiQr

T = TypeVar("T")

# -- entities, as the REST API answers them and webhooks carry them ----------------------------


class PaymentEntity(TypedDict):
    id: str
    status: str  # created, authorized, captured, refunded, failed
    amount: int
    currency: str
    order_id: NotRequired[str | None]  # null for a payment of a QR code
    captured: NotRequired[bool | None]
    error_code: NotRequired[str | None]
    error_description: NotRequired[str | None]
    created_at: NotRequired[int]


class RefundEntity(TypedDict):
    id: str
    # Ours from the refund's create ({"refund_id": ...}); Razorpay sends [] for no notes.
    notes: NotRequired[dict[str, Any] | list[Any]]


class QrCodeEntity(TypedDict):
    id: str


class DisputeEntity(TypedDict):
    id: str
    payment_id: str
    amount: int
    currency: str
    status: str  # open, under_review, won, lost, closed
    created_at: int
    reason_code: NotRequired[str | None]
    phase: NotRequired[str | None]
    respond_by: NotRequired[int | None]


# -- webhooks -----------------------------------------------------------------------------------


class Wrapped(TypedDict, Generic[T]):
    entity: T


class Payload(TypedDict, total=False):
    payment: Wrapped[PaymentEntity]
    refund: Wrapped[RefundEntity]
    qr_code: Wrapped[QrCodeEntity]
    dispute: Wrapped[DisputeEntity]


class Envelope(TypedDict):
    event: str
    created_at: int  # Unix seconds, repeated on every retry
    payload: Payload


# -- REST answers -------------------------------------------------------------------------------


class Order(BaseModel):
    id: str
    receipt: str | None = None


class Orders(BaseModel):
    items: list[Order] = []


class Payment(RootModel[PaymentEntity]):
    pass


class Payments(BaseModel):
    items: list[PaymentEntity] = []


class Refund(BaseModel):
    id: str
    status: str


class QrCode(BaseModel):
    id: str
    status: str
    image_url: str | None = None
    close_by: int | None = None
    notes: dict[str, Any] | list[Any] = {}
    image_content: str | None = None  # the upi://pay link, on accounts with the feature

    def ours(self, payment_id: str) -> bool:
        return isinstance(self.notes, dict) and self.notes.get("payment_id") == payment_id

    def upi(self) -> UpiQr:
        close_by = None if self.close_by is None else datetime.fromtimestamp(self.close_by, UTC)
        return UpiQr(self.id, self.image_url, close_by, self.image_content, self.status)


class QrCodes(BaseModel):
    items: list[QrCode] = []


class ErrorDetail(BaseModel):
    code: str | None = None
    description: str


class ErrorReply(BaseModel):
    error: ErrorDetail


# -- in our words -------------------------------------------------------------------------------


def signal(payment: PaymentEntity, status: str, paid_at: datetime | None = None) -> Signal:
    """A payment as a signal, by `status`: its own, or the one its webhook's event names."""
    if status in ("captured", "refunded"):
        amount, currency = int(payment["amount"]), str(payment["currency"])
        return Captured(str(payment["id"]), amount, currency, paid_at)
    if status == "authorized":
        return Authorized(str(payment["id"]), int(payment["amount"]), str(payment["currency"]))
    return Failed(str(payment["id"]), payment.get("error_code"), payment.get("error_description"))


def released(payment: PaymentEntity) -> bool:
    """An authorization never captured, refunded by Razorpay after its capture window."""
    return payment["status"] == "refunded" and payment.get("captured") is False


def settled(items: list[PaymentEntity]) -> Signal | None:
    """The order's outcome from its payment attempts: any capture wins, then authorisation, then
    an authorization Razorpay released uncaptured (as voided: no money was taken)."""
    for wanted in ("captured", "refunded", "authorized"):
        for item in items:
            if item["status"] == wanted and not released(item):
                return signal(item, wanted)
    if any(released(item) for item in items):
        return Voided()
    failed = [i for i in items if i["status"] == "failed"]
    return signal(max(failed, key=lambda i: i.get("created_at", 0)), "failed") if failed else None
