"""The order email tells what the seed's template shows (coins earned, tier, estimated delivery,
tracking link), the welcome email the coin balance: learnt from order.placed and the wallet's
events (the credits on the coins-credited push's own delivery)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from notify_testkit import Publish, payment, registered_user, status_is, unique
from prometheus_client import REGISTRY

from rtmn_fakes.sendgrid import SendGridFake
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import (
    OrderPlaced,
    PaymentSuccess,
    UserRegistered,
    WalletCashbackQuoted,
    WalletCredited,
    WalletDebited,
)
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.testing.running import RunningService
from rtmn_shared.testing.waiting import wait_for


def placed(paid: PaymentSuccess, **fields: object) -> OrderPlaced:
    return OrderPlaced(
        order_id=paid.order_id,
        order_number=paid.order_number,
        user_id=paid.user_id,
        merchant_id=paid.merchant_id,
        amount=paid.amount,
        currency=paid.currency,
        **fields,  # type: ignore[arg-type]
    )


def credited(user_id: str, coins: int, balance: int, reference: str) -> WalletCredited:
    return WalletCredited(
        entry_id=unique("entry"),
        user_id=user_id,
        coins=coins,
        reason="cashback",
        reference=reference,
        balance_after=balance,
    )


def quoted(paid: PaymentSuccess, coins: int) -> WalletCashbackQuoted:
    return WalletCashbackQuoted(
        order_id=paid.order_id,
        user_id=paid.user_id,
        amount=paid.amount,
        currency=paid.currency,
        tier="gold",
        coins=coins,
    )


def retried(queue: str) -> float:
    sample = REGISTRY.get_sample_value(
        "rtmn_events_consumed_total", {"queue": queue, "outcome": "retried"}
    )
    return sample or 0.0


async def balance_of(pool: Pool, user_id: str) -> int | None:
    coins: int | None = await pool.fetchval(
        "SELECT coins FROM coin_balances WHERE user_id = $1", user_id
    )
    return coins


async def test_the_order_email_tells_the_coins_tier_delivery_and_the_orders_own_tracking_link(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool, first_name="Asha")  # tier gold
    paid = payment(user.user_id, amount=49_900)
    track = f"https://track.rez.test/{paid.order_id}"
    await publish(placed(paid, estimated_delivery=date(2026, 11, 30), tracking_url=track))
    await publish(credited(user.user_id, 37, 137, paid.payment_id))
    await wait_for(
        lambda: pool.fetchval("SELECT true FROM orders WHERE order_id = $1", paid.order_id),
        message="the order read model",
    )
    await wait_for(lambda: balance_of(pool, user.user_id), message="the coins read model")
    waits = retried("notify.email-order-confirmation")

    await publish(paid)
    await wait_for(
        lambda: status_is(pool, user.user_id, "order-confirmation", "sent"), message="email sent"
    )

    [mail] = [m for m in sendgrid.mails_to(str(user.email)) if m.template_id == "d-order01"]
    assert mail.template_data(str(user.email)) == {
        "first_name": "Asha",
        "order_number": paid.order_number,
        "order_date": "27 Nov 2026",
        "total": "₹499.00",
        "tracking_url": track,
        "coins_earned": "37",
        "tier": "gold",
        "estimated_delivery": "30 Nov 2026",
    }
    assert retried("notify.email-order-confirmation") == waits  # all known: no wait


async def test_the_order_email_tells_the_coins_quoted_on_order_placed_before_the_credit(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool)
    paid = payment(user.user_id, amount=49_900)
    await publish(quoted(paid, 37))  # the quote may arrive before notify's order.placed
    await wait_for(
        lambda: pool.fetchval("SELECT coins_quoted FROM orders WHERE order_id = $1", paid.order_id),
        message="the quote recorded",
    )
    await publish(placed(paid, estimated_delivery=date(2026, 11, 30)))
    await wait_for(
        lambda: pool.fetchval(
            "SELECT estimated_delivery FROM orders WHERE order_id = $1", paid.order_id
        ),
        message="order.placed recorded into the quote's row",
    )
    waits = retried("notify.email-order-confirmation")

    await publish(paid)  # no wallet.credited yet: it is emitted as the email goes
    await wait_for(
        lambda: status_is(pool, user.user_id, "order-confirmation", "sent"), message="email sent"
    )

    [mail] = [m for m in sendgrid.mails_to(str(user.email)) if m.template_id == "d-order01"]
    data = mail.template_data(str(user.email))
    assert data["coins_earned"] == "37"
    assert data["estimated_delivery"] == "30 Nov 2026"
    assert retried("notify.email-order-confirmation") == waits  # no wait, no retry


async def test_the_credited_coins_win_over_the_quote_and_a_quote_of_zero_is_not_told(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool)
    credited_first, earns_nothing = payment(user.user_id), payment(user.user_id, amount=100)
    await publish(quoted(credited_first, 30))
    await publish(quoted(earns_nothing, 0))
    await publish(credited(user.user_id, 45, 45, credited_first.payment_id))
    await wait_for(lambda: balance_of(pool, user.user_id), message="the credit recorded")
    await wait_for(
        lambda: pool.fetchval(
            "SELECT count(*) = 2 FROM orders WHERE order_id = ANY($1)",
            [credited_first.order_id, earns_nothing.order_id],
        ),
        message="both quotes recorded",
    )

    await publish(credited_first)
    await publish(earns_nothing)

    def order_emails() -> dict[str, dict[str, Any]]:
        email = str(user.email)
        mails = [m for m in sendgrid.mails_to(email) if m.template_id == "d-order01"]
        return {m.template_data(email)["order_number"]: m.template_data(email) for m in mails}

    await wait_for(lambda: len(order_emails()) == 2, message="both order emails")
    told = order_emails()
    assert told[credited_first.order_number]["coins_earned"] == "45"
    assert "coins_earned" not in told[earns_nothing.order_number]


async def test_the_order_email_goes_at_once_without_what_is_not_known(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool)
    paid = payment(user.user_id)
    waits = retried("notify.email-order-confirmation")

    await publish(paid)  # no order.placed (a service's own create), no coins (none earned)
    await wait_for(
        lambda: status_is(pool, user.user_id, "order-confirmation", "sent"), message="email sent"
    )

    [mail] = [m for m in sendgrid.mails_to(str(user.email)) if m.template_id == "d-order01"]
    data = mail.template_data(str(user.email))
    assert "coins_earned" not in data
    assert "estimated_delivery" not in data
    assert data["tracking_url"] == f"https://rez.test/orders/{paid.order_id}/track"
    assert retried("notify.email-order-confirmation") == waits  # no wait on the payment path


async def test_the_welcome_email_tells_the_balance_and_an_older_ledger_event_never_wins(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake
) -> None:
    pool = notify.pool
    user_id = unique("user")
    later = CloudEvent.of(credited(user_id, 50, 150, unique("pay")), source="rtmn/wallet")
    debit = WalletDebited(
        entry_id=unique("entry"),
        user_id=user_id,
        coins=20,
        reason="cashback_reversal",
        reference=unique("rfnd"),
        balance_after=100,
    )
    earlier = CloudEvent.of(debit, source="rtmn/wallet").model_copy(
        update={"time": datetime.now(UTC) - timedelta(minutes=5)}
    )
    before = consumed_coins()
    await publish(event=later)
    await wait_for(lambda: balance_of(pool, user_id), message="the balance")
    await publish(event=earlier)  # a debit whose event is older arrives last
    await wait_for(lambda: consumed_coins() >= before + 1, message="the debit consumed")
    assert await balance_of(pool, user_id) == 150

    email = f"{user_id}@example.com"
    await publish(UserRegistered(user_id=user_id, email=email, first_name="Dev", locale="en-IN"))
    await wait_for(lambda: sendgrid.mails_to(email), message="the welcome email")

    [mail] = sendgrid.mails_to(email)
    assert mail.template_data(email)["coins_balance"] == "150"


def consumed_coins() -> float:
    sample = REGISTRY.get_sample_value(
        "rtmn_events_consumed_total", {"queue": "notify.coins", "outcome": "applied"}
    )
    return sample or 0.0
