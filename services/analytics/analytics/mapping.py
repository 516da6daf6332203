"""Domain events → analytics events, through an allow-list of properties per event type.

Only the fields named here ever leave: no emails, phone numbers, names, free-text reasons, URLs
(signed URLs carry tokens) or phone hashes (a 10-digit phone space is small enough to reverse).
A type without a mapping is not forwarded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from analytics.domain import AnalyticsEvent, Scalar
from rtmn_shared.events.envelope import CloudEvent, EventData
from rtmn_shared.money import Money


@dataclass(frozen=True)
class EventMapping:
    name: str
    # The data field naming the user; None for events that belong to no user.
    user: str | None
    fields: tuple[str, ...]
    # The minor-unit field shown as a decimal `revenue` next to `currency`.
    revenue: str | None = None


_PAYMENT = ("payment_id", "order_id", "gateway", "amount", "currency")
_WALLET = ("entry_id", "coins", "reason", "balance_after")
_NOTIFICATION = ("notification_id", "channel", "provider")

MAPPINGS: dict[str, EventMapping] = {
    "payment.success": EventMapping(
        "payment_success",
        "user_id",
        (*_PAYMENT, "order_number", "merchant_id"),
        revenue="amount",
    ),
    # error_description is the gateway's free text: it can quote the customer's details.
    "payment.failed": EventMapping(
        "payment_failed", "user_id", (*_PAYMENT, "error_code"), revenue="amount"
    ),
    "payment.refunded": EventMapping(
        "payment_refunded",
        "user_id",
        ("refund_id", "payment_id", "order_id", "amount", "refunded_total", "currency", "full"),
        revenue="amount",
    ),
    "wallet.credited": EventMapping("wallet_credited", "user_id", _WALLET),
    "wallet.debited": EventMapping("wallet_debited", "user_id", _WALLET),
    # Never email, phone or first_name.
    "user.registered": EventMapping("user_registered", "user_id", ("tier", "locale")),
    # Belongs to no user we may name: the phone hash stays home, only the purpose leaves.
    "otp.verified": EventMapping("otp_verified", None, ("purpose",)),
    "media.uploaded": EventMapping("media_uploaded", "owner_id", ("media_id", "folder")),
    # `reason` may quote a provider's error text with the address it failed on.
    "notification.sent": EventMapping("notification_sent", "user_id", _NOTIFICATION),
    "notification.failed": EventMapping("notification_failed", "user_id", _NOTIFICATION),
    # notification.requested is a command to notify, not something that happened: its outcome
    # arrives as notification.sent / notification.failed, one per user.
}

SERVER_EVENT_NAMES = frozenset(m.name for m in MAPPINGS.values())


def map_event(event: CloudEvent, data: EventData) -> AnalyticsEvent | None:
    mapping = MAPPINGS.get(event.type)
    if mapping is None:
        return None
    properties: dict[str, Scalar] = {"source": event.source}
    for name in mapping.fields:
        value = getattr(data, name)
        if value is not None:
            properties[name] = value
    if mapping.revenue is not None:
        money = Money(getattr(data, mapping.revenue), getattr(data, "currency"))  # noqa: B009
        # amount_string keeps the currency's places: 0 paise reads "0.00", not "0E-2".
        properties["revenue"] = Decimal(money.amount_string())
    user = str(getattr(data, mapping.user)) if mapping.user is not None else None
    return AnalyticsEvent(
        insert_id=str(event.id),
        name=mapping.name,
        user_id=user,
        time=event.time,
        properties=properties,
    )
