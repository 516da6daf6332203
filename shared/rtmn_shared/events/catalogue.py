"""Every event of the suite, in one place (DESIGN.md §3). Money is integer minor units + currency.

A type may gain optional fields; a breaking change is a new type (`payment.success.v2`).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, EmailStr, Field, HttpUrl

from rtmn_shared.events.envelope import EventData
from rtmn_shared.money import Currency

Gateway = Literal["razorpay", "stripe", "upi"]
Minor = int  # documented alias: an integer count of minor units (paise)


class PaymentSuccess(EventData):
    type = "payment.success"
    subject_field = "payment_id"

    payment_id: str
    order_id: str
    order_number: str
    user_id: str
    merchant_id: str
    amount: Minor = Field(ge=0)
    currency: Currency
    gateway: Gateway
    gateway_payment_id: str
    paid_at: AwareDatetime


class PaymentFailed(EventData):
    type = "payment.failed"
    subject_field = "payment_id"

    payment_id: str
    order_id: str
    user_id: str
    amount: Minor = Field(ge=0)
    currency: Currency
    gateway: Gateway
    error_code: str | None = None
    error_description: str | None = None


class PaymentRefunded(EventData):
    type = "payment.refunded"
    subject_field = "payment_id"

    refund_id: str
    payment_id: str
    order_id: str
    user_id: str
    amount: Minor = Field(gt=0, description="this refund")
    refunded_total: Minor = Field(gt=0, description="all processed refunds of the payment so far")
    currency: Currency
    full: bool


class PaymentDisputed(EventData):
    """A dispute (chargeback or inquiry) on a payment was opened or changed state.

    The payment keeps its own state; a `lost` dispute's amount went back to the customer.
    """

    type = "payment.disputed"
    subject_field = "payment_id"

    payment_id: str
    order_id: str
    user_id: str
    dispute_id: str = Field(description="ours; the same for every change of one dispute")
    gateway: Gateway
    gateway_dispute_id: str | None = None
    amount: Minor = Field(ge=0, description="the disputed amount")
    currency: Currency
    reason: str | None = Field(default=None, description="the provider's reason code")
    status: Literal["open", "under_review", "won", "lost", "closed"]
    phase: str | None = Field(
        default=None, description="e.g. inquiry, chargeback, pre_arbitration, arbitration"
    )
    evidence_due_by: AwareDatetime | None = None


class OrderPlaced(EventData):
    """Produced outside the suite (commerce): the only source of a user's payment amount."""

    type = "order.placed"
    subject_field = "order_id"

    order_id: str = Field(min_length=1, max_length=100)
    order_number: str = Field(min_length=1, max_length=100)
    user_id: str = Field(min_length=1)
    merchant_id: str = Field(min_length=1, max_length=100)
    amount: Minor = Field(gt=0, le=10**12)
    currency: Currency
    items_summary: str | None = Field(default=None, description="e.g. '2 items: ...'")
    estimated_delivery: date | None = None
    tracking_url: HttpUrl | None = None


class _WalletEntry(EventData):
    """One ledger entry; coins are positive, the event type says which way they moved."""

    subject_field = "user_id"

    entry_id: str
    user_id: str
    coins: int = Field(gt=0)
    reason: str
    reference: str
    balance_after: int


class WalletCredited(_WalletEntry):
    type = "wallet.credited"


class WalletDebited(_WalletEntry):
    type = "wallet.debited"


class WalletCashbackQuoted(EventData):
    """The coins an order will earn when paid, by the rule and tier a credit applies now.

    Emitted once per order.placed, 0 coins included (the order earns nothing). A forecast: the
    payment's wallet.credited is what was earned (another amount or a new tier may change it).
    """

    type = "wallet.cashback_quoted"
    subject_field = "order_id"

    order_id: str
    user_id: str
    amount: Minor = Field(ge=0, description="the order's amount the quote is for")
    currency: Currency
    tier: str = Field(description="the tier the earning rule applied")
    coins: int = Field(ge=0)


class UserRegistered(EventData):
    """Produced outside the suite; consumed as the users read model."""

    type = "user.registered"
    subject_field = "user_id"

    user_id: str
    email: EmailStr | None = None
    first_name: str | None = None
    phone: str | None = None
    tier: str | None = None
    locale: str | None = None


class OtpVerified(EventData):
    type = "otp.verified"
    subject_field = "phone_hash"

    phone_hash: str
    purpose: str


class MediaUploaded(EventData):
    type = "media.uploaded"
    subject_field = "media_id"

    media_id: str
    owner_id: str
    folder: str
    urls: dict[str, str]


class _NotificationOutcome(EventData):
    subject_field = "notification_id"

    notification_id: str
    event_id: str
    channel: Literal["email", "push", "sms", "whatsapp"]
    user_id: str
    provider: str
    reason: str | None = None


class NotificationSent(_NotificationOutcome):
    type = "notification.sent"


class NotificationFailed(_NotificationOutcome):
    type = "notification.failed"


RequestChannel = Literal["push", "sms", "whatsapp"]


class NotificationRequested(EventData):
    """A command: any service asks notify (its one consumer) to send."""

    type = "notification.requested"
    subject_field = "request_id"

    request_id: str = Field(min_length=1, max_length=200, description="idempotency key")
    user_ids: list[str] = Field(min_length=1, max_length=100_000)
    title: str = Field(min_length=1, max_length=200)
    message: str = Field(min_length=1, max_length=2000)
    image: HttpUrl | None = None
    data: dict[str, str] = Field(default_factory=dict, description="type, deepLink, action, ...")
    email_template: str | None = None
    # What the user consented to: transactional, account, wallet or promotional (the default:
    # a request that does not say is treated as marketing, opt-out and held in quiet hours).
    category: str = "promotional"
    # Where it goes besides the email (`email_template`): each channel, or with `fallback` the
    # first that reaches the user (push, and only if the user has no live device, sms...).
    channels: list[RequestChannel] = Field(
        default_factory=lambda: list[RequestChannel](["push"]), min_length=1, max_length=3
    )
    fallback: bool = False


CATALOGUE: dict[str, type[EventData]] = {
    model.type: model
    for model in (
        PaymentSuccess,
        PaymentFailed,
        PaymentRefunded,
        PaymentDisputed,
        OrderPlaced,
        WalletCredited,
        WalletDebited,
        WalletCashbackQuoted,
        UserRegistered,
        OtpVerified,
        MediaUploaded,
        NotificationSent,
        NotificationFailed,
        NotificationRequested,
    )
}

# Who may publish each type (the broker logins `<prefix><name>`, events/publishers.py); a
# consumer dead-letters an event from anyone else. `accounts` and `commerce` are producers
# outside the suite, with logins of their own.
PRODUCED_BY: dict[str, tuple[str, ...]] = {
    "payment.success": ("payments",),
    "payment.failed": ("payments",),
    "payment.refunded": ("payments",),
    "payment.disputed": ("payments",),
    "wallet.credited": ("wallet",),
    "wallet.debited": ("wallet",),
    "wallet.cashback_quoted": ("wallet",),
    "user.registered": ("accounts",),
    "order.placed": ("commerce",),
    "otp.verified": ("otp",),
    "media.uploaded": ("media",),
    "notification.sent": ("notify",),
    "notification.failed": ("notify",),
    # A command to notify: today only notify's own API issues it; a service that needs to send
    # is named here, not let in by default.
    "notification.requested": ("notify",),
}
EXTERNAL_PRODUCERS = ("accounts", "commerce")
