"""What each notification says, and how statuses may move. Pure: no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from notify.providers import PushMessage, TokenResult
from notify.templates import Rendered, TextTemplates
from rtmn_shared.events.catalogue import (
    NotificationRequested,
    PaymentFailed,
    PaymentRefunded,
    PaymentSuccess,
    UserRegistered,
    WalletCredited,
)
from rtmn_shared.money import Money

SOURCE = "rtmn/notify"  # the CloudEvent source of what notify emits


@dataclass(frozen=True)
class Recipient:
    user_id: str
    email: str | None
    first_name: str | None
    locale: str | None = None  # as the user's event gave it; templates choose the words
    tier: str | None = None


@dataclass(frozen=True)
class OrderFacts:
    """What notify has heard of a payment's order (order.placed) and its cashback
    (wallet.credited, else the order's wallet.cashback_quoted) by the time its confirmation
    email goes."""

    order_known: bool
    estimated_delivery: date | None = None
    tracking_url: str | None = None
    coins_earned: int | None = None

    @property
    def complete(self) -> bool:
        return self.order_known and self.coins_earned is not None


@dataclass(frozen=True)
class Links:
    app_url: str  # the web app, for links in emails
    deep_link_base: str  # the mobile app's scheme, for pushes

    def web(self, path: str) -> str:
        return f"{self.app_url.rstrip('/')}/{path.lstrip('/')}"

    def deep(self, path: str) -> str:
        return f"{self.deep_link_base}{path.lstrip('/')}"

    def ours(self, link: str) -> bool:
        """Whether a link opens our app or web app, not a page a caller chose."""
        return link.startswith((self.deep_link_base, f"{self.app_url.rstrip('/')}/"))


@dataclass(frozen=True)
class Templates:
    """SendGrid dynamic template ids."""

    welcome: str
    order_confirmation: str
    payment_failed: str
    payment_refunded: str

    def resolve(self, name: str) -> str:
        """A request may name one of ours or give a SendGrid dynamic template id itself."""
        known = {"welcome": self.welcome, "order-confirmation": self.order_confirmation}
        return known.get(name, name)


def greeting_name(first_name: str | None) -> str:
    return first_name.strip() if first_name and first_name.strip() else "there"


def welcome_data(user: UserRegistered, links: Links, coins_balance: int) -> dict[str, str]:
    return {
        "first_name": greeting_name(user.first_name),
        "app_url": links.web("/"),
        "coins_balance": str(coins_balance),
    }


def order_confirmation_data(
    payment: PaymentSuccess,
    recipient: Recipient,
    links: Links,
    facts: OrderFacts | None = None,
) -> dict[str, str]:
    """The seed template's fields; those notify has not heard of are left out, not blank."""
    facts = facts or OrderFacts(order_known=False)
    data = {
        "first_name": greeting_name(recipient.first_name),
        "order_number": payment.order_number,
        "order_date": payment.paid_at.strftime("%d %b %Y"),
        "total": Money(payment.amount, payment.currency).format(),
        "tracking_url": facts.tracking_url or links.web(f"/orders/{payment.order_id}/track"),
    }
    if facts.coins_earned:  # a quote of 0 (the order earns nothing) is left out, as unknown
        data["coins_earned"] = str(facts.coins_earned)
    if recipient.tier:
        data["tier"] = recipient.tier
    if facts.estimated_delivery is not None:
        data["estimated_delivery"] = facts.estimated_delivery.strftime("%d %b %Y")
    return data


def payment_failed_data(
    failed: PaymentFailed, recipient: Recipient, links: Links
) -> dict[str, str]:
    return {
        "first_name": greeting_name(recipient.first_name),
        "amount": Money(failed.amount, failed.currency).format(),
        "order_url": links.web(f"/orders/{failed.order_id}"),
    }


def refund_data(refund: PaymentRefunded, recipient: Recipient, links: Links) -> dict[str, str]:
    return {
        "first_name": greeting_name(recipient.first_name),
        "amount": Money(refund.amount, refund.currency).format(),
        "refunded_total": Money(refund.refunded_total, refund.currency).format(),
        "refund_kind": "full" if refund.full else "partial",
        "order_url": links.web(f"/orders/{refund.order_id}"),
    }


def payment_push(
    payment: PaymentSuccess, links: Links, texts: TextTemplates, locale: str | None
) -> PushMessage:
    amount = Money(payment.amount, payment.currency)
    words = texts.render(
        "payment_success",
        "push",
        locale,
        {"amount": amount, "order_number": payment.order_number},
    )
    return _push(
        words,
        {
            "type": "payment_success",
            "orderId": payment.order_id,
            "orderNumber": payment.order_number,
            "deepLink": links.deep(f"orders/{payment.order_id}"),
        },
    )


def payment_failed_push(
    failed: PaymentFailed, links: Links, texts: TextTemplates, locale: str | None
) -> PushMessage:
    words = texts.render("payment_failed", "push", locale, _failed_variables(failed))
    return _push(
        words,
        {
            "type": "payment_failed",
            "orderId": failed.order_id,
            "paymentId": failed.payment_id,
            "deepLink": links.deep(f"orders/{failed.order_id}"),
        },
    )


def payment_failed_sms(failed: PaymentFailed, texts: TextTemplates, locale: str | None) -> str:
    return texts.render("payment_failed", "sms", locale, _failed_variables(failed)).body


def _failed_variables(failed: PaymentFailed) -> dict[str, Money]:
    return {"amount": Money(failed.amount, failed.currency)}


def refund_push(
    refund: PaymentRefunded, links: Links, texts: TextTemplates, locale: str | None
) -> PushMessage:
    words = texts.render("payment_refunded", "push", locale, _refund_variables(refund))
    return _push(
        words,
        {
            "type": "payment_refunded",
            "orderId": refund.order_id,
            "refundId": refund.refund_id,
            "deepLink": links.deep(f"orders/{refund.order_id}"),
        },
    )


def refund_sms(refund: PaymentRefunded, texts: TextTemplates, locale: str | None) -> str:
    return texts.render("payment_refunded", "sms", locale, _refund_variables(refund)).body


def _refund_variables(refund: PaymentRefunded) -> dict[str, Money]:
    return {
        "amount": Money(refund.amount, refund.currency),
        "refunded_total": Money(refund.refunded_total, refund.currency),
    }


def wallet_push(
    credit: WalletCredited, links: Links, texts: TextTemplates, locale: str | None
) -> PushMessage:
    variables = {"coins": credit.coins, "balance": credit.balance_after}
    return _push(
        texts.render("wallet_credited", "push", locale, variables),
        {
            "type": "wallet_credited",
            "coins": str(credit.coins),
            "balance": str(credit.balance_after),
            "deepLink": links.deep("wallet"),
        },
    )


def _push(words: Rendered, data: dict[str, str]) -> PushMessage:
    assert words.title is not None  # every push template has one (templates.load checks)
    return PushMessage(title=words.title, body=words.body, data=data)


# What a push asked for over HTTP may say, by name: the words are ours, so no caller's text
# reaches a phone (nor a phishing line in our app's voice). Add a category here to offer it.
PushTemplate = Literal["flash_sale", "new_offer", "order_update", "wallet_update", "account_notice"]
PUSH_TEMPLATES: dict[PushTemplate, tuple[str, str]] = {
    "flash_sale": ("Flash Sale!", "A limited-time offer is live. Tap to see it."),
    "new_offer": ("A new offer for you", "There is a new offer in the app. Tap to see it."),
    "order_update": ("Order update", "There is news about your order. Tap to see it."),
    "wallet_update": ("REZ Coins update", "Your REZ Coins have changed. Tap to see your wallet."),
    "account_notice": (
        "Account notice",
        "Please open the app to read a notice about your account.",
    ),
}


def requested_push(command: NotificationRequested) -> PushMessage:
    # FCM's data payload carries strings only; the catalogue already types it so.
    return PushMessage(
        title=command.title,
        body=command.message,
        data=dict(command.data),
        image=str(command.image) if command.image else None,
    )


def requested_email_data(command: NotificationRequested, recipient: Recipient) -> dict[str, str]:
    return {
        **command.data,
        "first_name": greeting_name(recipient.first_name),
        "title": command.title,
        "message": command.message,
    }


def batches(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# -- statuses -----------------------------------------------------------------------------

# How far an email has got; a status may only move to a higher rank (late webhooks, replays).
EMAIL_PROGRESS = {"queued": 0, "sent": 1, "delivered": 2, "bounced": 3, "dropped": 3}


@dataclass(frozen=True)
class EmailEvent:
    """One event SendGrid reported about an email, in our words (`providers/sendgrid/wire.py`)."""

    kind: str  # SendGrid's event name, as its store and log lines name it
    delivery_id: uuid.UUID | None  # ours, when the event carries it
    message_id: str | None  # SendGrid's X-Message-Id for the mail
    status: str | None  # the status it moves the email to; None changes none
    opt_out: bool  # the user asked to stop this category's email (unsubscribe, spam report)
    suppression: str | None  # why the address must not be mailed again, or None
    email: str | None


def statuses_before(status: str) -> list[str]:
    """The statuses an email may move to `status` from."""
    rank = EMAIL_PROGRESS[status]
    return [s for s, r in EMAIL_PROGRESS.items() if r < rank]


@dataclass(frozen=True)
class PushSummary:
    """One attempt's per-token results, reduced to what the delivery row needs."""

    sent: list[TokenResult]
    dead: list[TokenResult]
    failed: list[TokenResult]
    retry: list[TokenResult]

    @classmethod
    def of(cls, results: Sequence[TokenResult]) -> PushSummary:
        return cls(
            sent=[r for r in results if r.outcome == "sent"],
            dead=[r for r in results if r.outcome == "dead"],
            failed=[r for r in results if r.outcome == "failed"],
            retry=[r for r in results if r.outcome == "retry"],
        )

    def final_status(self, sent_before: int) -> str | None:
        """None while some token waits for a retry; then sent if any device got it."""
        if self.retry:
            return None
        return "sent" if self.sent or sent_before else "failed"

    def reason(self) -> str | None:
        errors = [r.error for r in (*self.retry, *self.failed, *self.dead) if r.error]
        return "; ".join(errors)[:1000] if errors else None
