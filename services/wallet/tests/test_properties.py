"""Property: whatever the payments, refunds, redeliveries, replays and their order, the ledger
adds up, no payment loses more than it earned, and a fully refunded payment nets to zero.

Runs against the real PostgreSQL through the same handlers the consumer runner calls.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import PaymentRefunded, PaymentSuccess
from rtmn_shared.events.envelope import EventData
from wallet.domain import EarningRule

Deliver = Callable[..., Awaitable[bool]]


@dataclass(frozen=True)
class Plan:
    payment: PaymentSuccess
    refund_totals: list[int]  # running totals, ascending; the last may equal the amount


@dataclass(frozen=True)
class Scenario:
    plans: list[Plan]
    # (event, event id) in arrival order; a repeated id is a redelivery, a new id a replay.
    arrivals: list[tuple[EventData, uuid.UUID]]
    concurrent: bool


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    run = uuid.uuid4().hex[:10]
    users = [f"prop_{run}_u{n}" for n in range(draw(st.integers(1, 2)))]
    plans: list[Plan] = []
    events: list[EventData] = []
    for n in range(draw(st.integers(1, 3))):
        # Up to ₹20,000, so some payments hit the 500-coin cap and some earn nothing.
        amount = draw(st.integers(1, 2_000_000))
        paid = PaymentSuccess(
            payment_id=f"prop_{run}_p{n}",
            order_id=f"ord_{n}",
            order_number=f"R{n}",
            user_id=draw(st.sampled_from(users)),
            merchant_id="m",
            amount=amount,
            currency="INR",
            gateway="razorpay",
            gateway_payment_id=f"rzp_{n}",
            paid_at=datetime.now(UTC),
        )
        cuts = draw(st.lists(st.integers(1, amount), max_size=3))
        if draw(st.booleans()):
            cuts.append(amount)  # the refund that completes a full refund
        totals, refunded = [], 0
        for cut in cuts:
            if refunded >= amount:
                break
            refunded = min(amount, refunded + cut)
            totals.append(refunded)
        plans.append(Plan(paid, totals))
        events.append(paid)
        previous = 0
        for k, total in enumerate(totals):
            events.append(
                PaymentRefunded(
                    refund_id=f"prop_{run}_p{n}_r{k}",
                    payment_id=paid.payment_id,
                    order_id=paid.order_id,
                    user_id=paid.user_id,
                    amount=total - previous,
                    refunded_total=total,
                    currency="INR",
                    full=total == amount,
                )
            )
            previous = total
    arrivals = [(event, uuid.uuid4()) for event in events]
    for index, same_id in draw(
        st.lists(st.tuples(st.integers(0, len(arrivals) - 1), st.booleans()), max_size=4)
    ):
        event, event_id = arrivals[index]
        arrivals.append((event, event_id if same_id else uuid.uuid4()))
    order = draw(st.permutations(range(len(arrivals))))
    return Scenario(plans, [arrivals[i] for i in order], draw(st.booleans()))


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenario=scenarios())
async def test_the_ledger_adds_up_in_any_order(
    scenario: Scenario, wallet_pool: Pool, deliver: Deliver, rule: EarningRule
) -> None:
    if scenario.concurrent:
        await asyncio.gather(*(deliver(event, eid) for event, eid in scenario.arrivals))
    else:
        for event, eid in scenario.arrivals:
            await deliver(event, eid)

    users = {plan.payment.user_id for plan in scenario.plans}
    for user in users:
        balance = await wallet_pool.fetchval(
            "SELECT coalesce((SELECT coins FROM balances WHERE user_id = $1), 0)", user
        )
        total = await wallet_pool.fetchval(
            "SELECT coalesce(sum(coins), 0) FROM entries WHERE user_id = $1", user
        )
        assert balance == total

    for plan in scenario.plans:
        paid = plan.payment
        row = await wallet_pool.fetchrow(
            """SELECT coalesce(sum(coins) FILTER (WHERE kind = 'cashback'), 0) AS credited,
                      count(*) FILTER (WHERE kind = 'cashback') AS credits,
                      coalesce(-sum(coins) FILTER (WHERE kind = 'cashback_reversal'), 0)
                          AS reversed
               FROM entries WHERE payment_id = $1""",
            paid.payment_id,
        )
        assert row is not None
        earned = rule.coins_for(paid.amount, paid.currency, None)
        assert row["credited"] == earned
        assert row["credits"] == (1 if earned else 0)
        assert 0 <= row["reversed"] <= row["credited"]
        last = plan.refund_totals[-1] if plan.refund_totals else 0
        if last == paid.amount:
            assert row["reversed"] == row["credited"]  # a full refund nets to zero
        else:
            assert row["reversed"] == earned * last // paid.amount
        unsettled = await wallet_pool.fetchval(
            "SELECT count(*) FROM refunds WHERE payment_id = $1 AND settled_at IS NULL",
            paid.payment_id,
        )
        assert unsettled == 0
