"""Disputes from Razorpay and Stripe webhooks: recorded once, moved forward only, each change one
`payment.disputed` event, the payment itself untouched."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import aio_pika
import orjson
from payments_testkit import Api

from payments.disputes import DisputeStatus, supersedes
from rtmn_fakes.payloads import load
from rtmn_fakes.razorpay import RazorpayFake, build_webhook
from rtmn_fakes.stripe import StripeFake, build_event, sign_stripe_webhook
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import PaymentDisputed
from rtmn_shared.events.topology import declare_exchange


async def stripe_webhook(api: Api, body: bytes, *, secret: str | None = None) -> Any:
    header = sign_stripe_webhook(body, secret or api.stripe_webhook_secret)
    return await api.client.post(
        "/api/webhooks/stripe", data=body, headers={"Stripe-Signature": header}
    )


async def razorpay_disputed(api: Api, user: str) -> tuple[str, dict[str, Any]]:
    """A captured Razorpay payment (ours) and a dispute the customer's bank opened on it."""
    created, paid = await api.captured(user)
    return created["payment_id"], api.razorpay.open_dispute(paid["id"], amount=20_000)


async def stripe_disputed(api: Api, user: str) -> tuple[str, dict[str, Any]]:
    created = await api.created(user, gateway="stripe")
    api.stripe.succeed(created["gateway_order_id"])
    body = api.stripe.build_event("payment_intent.succeeded", created["gateway_order_id"])
    assert (await stripe_webhook(api, body)).status == 200
    return created["payment_id"], api.stripe.open_dispute(created["gateway_order_id"])


def razorpay_report(
    razorpay: RazorpayFake, state: str, dispute: dict[str, Any], created_at: int
) -> bytes:
    """The webhook of `dispute` as it is now, stamped with Razorpay's time of the event."""
    payment = razorpay.payments[dispute["payment_id"]]
    return build_webhook(
        f"payment.dispute.{state}", payment=payment, dispute=dispute, created_at=created_at
    )


async def dispute_rows(pool: Pool, gateway_dispute_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT * FROM disputes WHERE gateway_dispute_id = $1", gateway_dispute_id
    )
    return [dict(r) for r in rows]


async def test_a_razorpay_dispute_is_recorded_with_one_event_and_the_payment_keeps_its_state(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    payment_id, dispute = await razorpay_disputed(api, user)

    response = await api.razorpay_webhook(
        razorpay.build_webhook("payment.dispute.created", dispute_id=dispute["id"])
    )

    assert (response.status, await response.json()) == (200, {"status": "processed"})
    view = await api.get(payment_id)
    assert (view["status"], view["captured_amount"]) == ("captured", 50_000)
    [shown] = view["disputes"]
    assert (shown["gateway_dispute_id"], shown["amount"], shown["currency"]) == (
        dispute["id"],
        20_000,
        "INR",
    )
    assert (shown["status"], shown["phase"], shown["reason"]) == (
        "open",
        "chargeback",
        dispute["reason_code"],
    )
    due = datetime.fromtimestamp(dispute["respond_by"], UTC)
    assert datetime.fromisoformat(shown["evidence_due_by"]) == due
    [event] = await api.events(payment_id, "payment.disputed")
    assert (event["payment_id"], event["user_id"], event["gateway"]) == (
        payment_id,
        user,
        "razorpay",
    )
    assert (event["dispute_id"], event["gateway_dispute_id"]) == (
        shown["dispute_id"],
        dispute["id"],
    )
    assert (event["amount"], event["currency"], event["status"]) == (20_000, "INR", "open")
    assert datetime.fromisoformat(event["evidence_due_by"]) == due
    assert event["order_id"] == (await api.get(payment_id))["order_id"]


async def test_payment_disputed_leaves_through_the_relay_as_the_catalogue_describes_it(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    connection = await aio_pika.connect(api.suite.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(await declare_exchange(channel), routing_key="payment.disputed")
        payment_id, dispute = await razorpay_disputed(api, user)

        await api.razorpay_webhook(
            razorpay.build_webhook("payment.dispute.created", dispute_id=dispute["id"])
        )

        async with queue.iterator(timeout=10) as messages:
            async for message in messages:
                await message.ack()
                event = orjson.loads(message.body)
                if event["subject"] == payment_id:
                    break
    assert (event["type"], event["source"]) == ("payment.disputed", "rtmn/payments")
    data = PaymentDisputed.model_validate(event["data"])
    assert (data.gateway_dispute_id, data.status, data.amount) == (dispute["id"], "open", 20_000)


async def test_a_redelivered_dispute_webhook_changes_nothing_and_emits_nothing(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    payment_id, dispute = await razorpay_disputed(api, user)
    body = razorpay.build_webhook("payment.dispute.created", dispute_id=dispute["id"])

    first = await api.razorpay_webhook(body, event_id=f"evt_{dispute['id']}")
    again = await api.razorpay_webhook(body, event_id=f"evt_{dispute['id']}")
    # The same signed body under a new event id is the same delivery (its digest).
    replayed = await api.razorpay_webhook(body)

    assert [(await r.json())["status"] for r in (first, again, replayed)] == [
        "processed",
        "duplicate",
        "duplicate",
    ]
    assert len(await api.events(payment_id, "payment.disputed")) == 1
    assert len(await dispute_rows(api.pool, dispute["id"])) == 1


async def test_each_state_change_is_one_event_in_order(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    payment_id, dispute = await razorpay_disputed(api, user)
    at = int(time.time()) - 600

    for offset, state, status in (
        (0, "created", "open"),
        (60, "under_review", "under_review"),
        (120, "lost", "lost"),
    ):
        now = razorpay.set_dispute_status(dispute["id"], status)  # type: ignore[arg-type]
        body = razorpay_report(razorpay, state, now, at + offset)
        assert (await (await api.razorpay_webhook(body)).json())["status"] == "processed"

    events = await api.events(payment_id, "payment.disputed")
    assert [e["status"] for e in events] == ["open", "under_review", "lost"]
    assert len({e["dispute_id"] for e in events}) == 1
    assert (await api.get(payment_id))["status"] == "captured"


async def test_a_late_created_after_won_does_not_move_the_dispute_back(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    payment_id, dispute = await razorpay_disputed(api, user)
    at = int(time.time()) - 600
    created = razorpay_report(razorpay, "created", dispute, at)
    won = razorpay_report(
        razorpay, "won", razorpay.set_dispute_status(dispute["id"], "won"), at + 300
    )

    await api.razorpay_webhook(won)
    late = await api.razorpay_webhook(created)

    assert (await late.json())["status"] == "processed"  # recorded: a retry would change nothing
    [shown] = (await api.get(payment_id))["disputes"]
    assert shown["status"] == "won"
    assert [e["status"] for e in await api.events(payment_id, "payment.disputed")] == ["won"]


async def test_within_one_second_the_further_status_wins(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    payment_id, dispute = await razorpay_disputed(api, user)
    at = int(time.time()) - 600
    review = razorpay_report(
        razorpay, "under_review", razorpay.set_dispute_status(dispute["id"], "under_review"), at
    )
    won = razorpay_report(razorpay, "won", razorpay.set_dispute_status(dispute["id"], "won"), at)

    await api.razorpay_webhook(won)
    await api.razorpay_webhook(review)

    assert (await api.get(payment_id))["disputes"][0]["status"] == "won"
    assert len(await api.events(payment_id, "payment.disputed")) == 1


async def test_concurrent_reports_of_a_new_dispute_make_one_row_and_end_at_the_newest(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    payment_id, dispute = await razorpay_disputed(api, user)
    at = int(time.time()) - 600
    created = razorpay_report(razorpay, "created", dispute, at)
    lost = razorpay_report(
        razorpay, "lost", razorpay.set_dispute_status(dispute["id"], "lost"), at + 60
    )

    responses = await asyncio.gather(*(api.razorpay_webhook(body) for body in [created, lost] * 5))

    assert (
        sorted([(await r.json())["status"] for r in responses])
        == ["duplicate"] * 8 + ["processed"] * 2
    )
    assert len(await dispute_rows(api.pool, dispute["id"])) == 1
    events = await api.events(payment_id, "payment.disputed")
    assert [e["status"] for e in events] in (["open", "lost"], ["lost"])
    assert (await api.get(payment_id))["disputes"][0]["status"] == "lost"


async def test_a_won_dispute_reopened_in_pre_arbitration_is_open_again(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    payment_id, dispute = await razorpay_disputed(api, user)
    at = int(time.time()) - 600
    won = razorpay.set_dispute_status(dispute["id"], "won")
    await api.razorpay_webhook(razorpay_report(razorpay, "won", won, at))

    reopened = razorpay.set_dispute_status(dispute["id"], "open", phase="pre_arbitration")
    await api.razorpay_webhook(razorpay_report(razorpay, "created", reopened, at + 60))

    events = await api.events(payment_id, "payment.disputed")
    assert [(e["status"], e["phase"]) for e in events] == [
        ("won", "chargeback"),
        ("open", "pre_arbitration"),
    ]


async def test_a_stripe_dispute_is_recorded_and_each_status_change_emits_once(
    api: Api, stripe: StripeFake, user: str
) -> None:
    payment_id, dispute = await stripe_disputed(api, user)
    at = int(time.time()) - 600

    reports = [
        ("charge.dispute.created", "needs_response", at),
        ("charge.dispute.funds_withdrawn", "needs_response", at + 1),  # same status: no event
        ("charge.dispute.updated", "under_review", at + 60),
        ("charge.dispute.closed", "won", at + 120),
        ("charge.dispute.funds_reinstated", "won", at + 121),
    ]
    for kind, status, created in reports:
        now = stripe.set_dispute_status(dispute["id"], status)  # type: ignore[arg-type]
        response = await stripe_webhook(api, build_event(kind, now, created=created))
        assert (await response.json())["status"] == "processed"

    events = await api.events(payment_id, "payment.disputed")
    assert [e["status"] for e in events] == ["open", "under_review", "won"]
    assert {(e["gateway"], e["amount"], e["currency"]) for e in events} == {
        ("stripe", 50_000, "INR")
    }
    assert {e["reason"] for e in events} == {"fraudulent"}
    view = await api.get(payment_id)
    assert (view["status"], view["disputes"][0]["status"]) == ("captured", "won")
    assert view["disputes"][0]["phase"] == "chargeback"


async def test_a_stripe_dispute_naming_only_the_charge_finds_its_payment(
    api: Api, stripe: StripeFake, user: str
) -> None:
    payment_id, dispute = await stripe_disputed(api, user)
    # Stripe's own example has `"payment_intent": null`: the charge is all there is.
    inquiry = dict(dispute, payment_intent=None, status="warning_needs_response")

    await stripe_webhook(api, build_event("charge.dispute.created", inquiry))

    [event] = await api.events(payment_id, "payment.disputed")
    assert (event["status"], event["phase"]) == ("open", "inquiry")


async def test_a_dispute_of_a_payment_we_do_not_know_is_recorded_and_answered_200(
    api: Api, pool: Pool
) -> None:
    published = load("razorpay", "webhook.payment.dispute.created.json")
    published["created_at"] = int(time.time())
    published["payload"]["dispute"]["entity"]["id"] = f"disp_unknown{time.time_ns()}"
    body = json.dumps(published).encode()
    dispute_id = published["payload"]["dispute"]["entity"]["id"]

    response = await api.razorpay_webhook(body)

    assert (response.status, await response.json()) == (200, {"status": "processed"})
    [row] = await dispute_rows(pool, dispute_id)
    assert (row["payment_id"], row["status"], row["amount"]) == (None, "open", 39_000)
    emitted = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE payload->'data'->>'gateway_dispute_id' = $1",
        dispute_id,
    )
    assert emitted == 0


async def test_a_dispute_webhook_with_a_bad_signature_changes_nothing(
    api: Api, razorpay: RazorpayFake, stripe: StripeFake, user: str
) -> None:
    payment_id, dispute = await razorpay_disputed(api, user)
    body = razorpay.build_webhook("payment.dispute.lost", dispute_id=dispute["id"])
    stripe_payment, stripe_dispute = await stripe_disputed(api, user)

    refused = await api.razorpay_webhook(body, secret="whsec_someone_else", event_id="evt_bad_1")
    stripe_refused = await stripe_webhook(
        api, stripe.build_event("charge.dispute.created", stripe_dispute["id"]), secret="whsec_x"
    )

    assert (refused.status, stripe_refused.status) == (400, 400)
    assert refused.content_type == "application/problem+json"
    assert await dispute_rows(api.pool, dispute["id"]) == []
    assert await dispute_rows(api.pool, stripe_dispute["id"]) == []
    assert await api.deliveries_recorded("evt_bad_1") == 0
    assert await api.events(payment_id, "payment.disputed") == []
    assert await api.events(stripe_payment, "payment.disputed") == []


def test_a_newer_report_supersedes_and_a_tie_goes_to_the_further_status() -> None:
    t0 = datetime(2026, 12, 4, tzinfo=UTC)
    t1 = datetime(2026, 12, 4, 0, 0, 1, tzinfo=UTC)
    won, opened = DisputeStatus.WON, DisputeStatus.OPEN

    assert supersedes(t1, opened, t0, won)  # re-opened later (pre-arbitration)
    assert not supersedes(t0, opened, t1, won)  # a late `created`
    assert supersedes(t0, won, t0, opened)
    assert not supersedes(t0, opened, t0, won)
    assert not supersedes(t0, won, t0, won)  # the same report again: nothing to do
