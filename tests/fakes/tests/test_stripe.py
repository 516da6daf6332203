"""The real stripe SDK (async, aiohttp transport) against StripeFake, and webhook signing."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import stripe
from stripe.params import PaymentIntentCreateParams

from rtmn_fakes.payloads import load
from rtmn_fakes.stripe import StripeFake, build_event, sign_stripe_webhook

API_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
WHSEC = "whsec_test_secret"


@pytest.fixture
async def fake() -> AsyncIterator[StripeFake]:
    async with StripeFake(api_key=API_KEY) as fake:
        yield fake


@asynccontextmanager
async def stripe_client(
    fake: StripeFake, key: str = API_KEY, retries: int = 0
) -> AsyncIterator[stripe.StripeClient]:
    """As PROVIDERS.md says: the aiohttp transport, closed by whoever made it."""
    http_client = stripe.AIOHTTPClient()
    try:
        yield stripe.StripeClient(
            key,
            base_addresses={"api": fake.url},
            http_client=http_client,
            max_network_retries=retries,
        )
    finally:
        await http_client.close_async()  # type: ignore[no-untyped-call]


@pytest.fixture
async def client(fake: StripeFake) -> AsyncIterator[stripe.StripeClient]:
    async with stripe_client(fake) as client:
        yield client


PI: PaymentIntentCreateParams = {
    "amount": 2_000,
    "currency": "inr",
    "metadata": {"order_id": "ord-1"},
}


async def test_payment_intent_is_created_from_form_params(
    fake: StripeFake, client: stripe.StripeClient
) -> None:
    intent = await client.v1.payment_intents.create_async(PI)

    assert intent.id.startswith("pi_")
    assert (intent.amount, intent.currency, intent.status) == (
        2_000,
        "inr",
        "requires_payment_method",
    )
    assert intent.metadata["order_id"] == "ord-1"
    assert str(intent.client_secret).startswith(f"{intent.id}_secret_")
    [sent] = fake.requests_to("/v1/payment_intents", "POST")
    assert sent.form == {"amount": "2000", "currency": "inr", "metadata[order_id]": "ord-1"}
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
    fetched = await client.v1.payment_intents.retrieve_async(intent.id)
    assert fetched.id == intent.id


async def test_same_idempotency_key_and_params_replays_the_first_result(
    fake: StripeFake, client: stripe.StripeClient
) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "pay-ord-1"}

    first = await client.v1.payment_intents.create_async(PI, options)
    again = await client.v1.payment_intents.create_async(PI, options)

    assert again.id == first.id
    assert len(fake.payment_intents) == 1
    assert again.last_response is not None
    assert again.last_response.headers["Idempotent-Replayed"] == "true"


async def test_same_idempotency_key_with_other_params_or_endpoint_is_an_idempotency_error(
    fake: StripeFake, client: stripe.StripeClient
) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "pay-ord-2"}
    intent = await client.v1.payment_intents.create_async(PI, options)

    with pytest.raises(stripe.IdempotencyError, match="same parameters"):
        await client.v1.payment_intents.create_async({**PI, "amount": 2_001}, options)
    fake.succeed(intent.id)
    with pytest.raises(stripe.IdempotencyError, match="same endpoint"):
        await client.v1.refunds.create_async({"payment_intent": intent.id}, options)

    assert len(fake.payment_intents) == 1
    assert fake.refunds == {}


async def test_wrong_api_key_is_an_authentication_error(fake: StripeFake) -> None:
    async with stripe_client(fake, key="sk_test_wrong000000000000") as client:
        with pytest.raises(stripe.AuthenticationError, match="Invalid API Key"):
            await client.v1.payment_intents.create_async(PI)
    assert fake.payment_intents == {}


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"currency": "inr"}, "amount", "parameter_missing"),
        ({"amount": 2_000}, "currency", "parameter_missing"),
        ({"amount": 10, "currency": "inr"}, "amount", "amount_too_small"),
        ({"amount": -5, "currency": "inr"}, "amount", None),
        ({"amount": 2_000, "currency": "xyz"}, "currency", None),
        ({"amount": 2_000, "currency": "inr", "colour": "red"}, "colour", None),
        (
            {"amount": 2_000, "currency": "inr", "metadata": {"k" * 41: "v"}},
            f"metadata[{'k' * 41}]",
            None,
        ),
    ],
)
async def test_invalid_payment_intents_are_rejected_like_stripe(
    fake: StripeFake,
    client: stripe.StripeClient,
    params: dict[str, object],
    param: str,
    code: str | None,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.payment_intents.create_async(params)  # type: ignore[arg-type]

    assert (caught.value.param, caught.value.code, caught.value.http_status) == (param, code, 400)
    assert fake.payment_intents == {}


async def test_unknown_payment_intent_is_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.payment_intents.retrieve_async("pi_missing")

    assert (caught.value.code, caught.value.http_status) == ("resource_missing", 404)


async def test_refunds_need_a_successful_charge_and_stop_at_its_amount(
    fake: StripeFake, client: stripe.StripeClient
) -> None:
    intent = await client.v1.payment_intents.create_async(PI)
    with pytest.raises(stripe.InvalidRequestError, match="does not have a successful charge"):
        await client.v1.refunds.create_async({"payment_intent": intent.id})
    fake.succeed(intent.id)

    partial = await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 500})
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 1_501})
    rest = await client.v1.refunds.create_async({"payment_intent": intent.id})
    with pytest.raises(stripe.InvalidRequestError) as done:
        await client.v1.refunds.create_async({"payment_intent": intent.id})

    assert (partial.amount, partial.status, partial.payment_intent) == (500, "succeeded", intent.id)
    assert too_much.value.code == "amount_too_large"
    assert rest.amount == 1_500
    assert done.value.code == "charge_already_refunded"
    fake.set_refund_status(partial.id, "failed")
    assert (await client.v1.refunds.retrieve_async(partial.id)).status == "failed"


async def test_only_an_authorized_intent_is_captured_and_at_most_its_capturable_amount(
    fake: StripeFake, client: stripe.StripeClient
) -> None:
    intent = await client.v1.payment_intents.create_async(PI)
    with pytest.raises(stripe.InvalidRequestError) as too_early:
        await client.v1.payment_intents.capture_async(intent.id)
    fake.authorize(intent.id)

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await client.v1.payment_intents.capture_async(intent.id, {"amount_to_capture": 2_001})
    part = await client.v1.payment_intents.capture_async(intent.id, {"amount_to_capture": 1_500})
    with pytest.raises(stripe.InvalidRequestError) as again:
        await client.v1.payment_intents.capture_async(intent.id)
    with pytest.raises(stripe.InvalidRequestError) as cancel:
        await client.v1.payment_intents.cancel_async(intent.id)

    assert too_early.value.code == "payment_intent_unexpected_state"
    assert too_much.value.code == "amount_too_large"
    assert (part.status, part.amount_received, part.amount_capturable) == ("succeeded", 1_500, 0)
    assert again.value.code == cancel.value.code == "payment_intent_unexpected_state"


async def test_an_open_or_authorized_intent_is_cancelled_once(
    fake: StripeFake, client: stripe.StripeClient
) -> None:
    open_intent = await client.v1.payment_intents.create_async(PI)
    held = await client.v1.payment_intents.create_async(PI)
    fake.authorize(held.id)

    abandoned = await client.v1.payment_intents.cancel_async(
        open_intent.id, {"cancellation_reason": "abandoned"}
    )
    released = await client.v1.payment_intents.cancel_async(held.id)
    with pytest.raises(stripe.InvalidRequestError) as again:
        await client.v1.payment_intents.cancel_async(held.id)
    with pytest.raises(stripe.InvalidRequestError) as reason:
        await client.v1.payment_intents.cancel_async(
            (await client.v1.payment_intents.create_async(PI)).id,
            {"cancellation_reason": "bored"},
        )
    fake.fail_next(1, 500, path="/cancel")
    with pytest.raises(stripe.APIError):
        await client.v1.payment_intents.cancel_async(open_intent.id)

    assert (abandoned.status, abandoned.cancellation_reason) == ("canceled", "abandoned")
    assert (released.status, released.amount_capturable) == ("canceled", 0)
    assert again.value.code == "payment_intent_unexpected_state"
    assert reason.value.param == "cancellation_reason"


async def test_sdk_retries_a_500_with_its_own_idempotency_key_and_creates_once(
    fake: StripeFake,
) -> None:
    fake.fail_next(1, status=500, path="/v1/payment_intents")
    async with stripe_client(fake, retries=1) as client:
        intent = await client.v1.payment_intents.create_async(PI)

    attempts = fake.requests_to("/v1/payment_intents", "POST")
    assert [a.status for a in attempts] == [500, 200]
    assert attempts[0].headers["Idempotency-Key"] == attempts[1].headers["Idempotency-Key"]
    assert list(fake.payment_intents) == [intent.id]


def test_signature_matches_the_derived_example_of_stripes_test_inputs() -> None:
    inputs = load("stripe", "webhook_signature.sdk_test_inputs.json")
    example = inputs["derived_example"]

    header = sign_stripe_webhook(inputs["payload_raw"].encode(), inputs["secret"], example["t"])

    assert header == example["stripe_signature_header"]


def test_construct_event_accepts_our_signature_and_rejects_bad_ones() -> None:
    payload = build_event("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"})

    event = stripe.Webhook.construct_event(payload, sign_stripe_webhook(payload, WHSEC), WHSEC)

    assert (event.type, event.data.object.id) == ("payment_intent.succeeded", "pi_1")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, sign_stripe_webhook(payload, "whsec_other"), WHSEC)
    stale = sign_stripe_webhook(payload, WHSEC, timestamp=int(time.time()) - 301)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(payload, stale, WHSEC)


async def test_fake_builds_events_about_its_own_objects(
    fake: StripeFake, client: stripe.StripeClient
) -> None:
    intent = await client.v1.payment_intents.create_async(PI)
    fake.succeed(intent.id)

    payload = fake.build_event("payment_intent.succeeded", intent.id)

    event = json.loads(payload)
    assert event["data"]["object"]["status"] == "succeeded"
    assert event["data"]["object"]["metadata"] == {"order_id": "ord-1"}
    assert event["object"] == "event"
    assert event["id"].startswith("evt_")


async def test_a_dispute_of_a_charge_is_retrieved_and_sent_as_stripes_events(
    fake: StripeFake, client: stripe.StripeClient
) -> None:
    intent = await client.v1.payment_intents.create_async(PI)
    charge = fake.succeed(intent.id)["latest_charge"]

    opened = fake.open_dispute(intent.id, inquiry=True)
    fake.set_dispute_status(opened["id"], "lost")

    dispute = await client.v1.disputes.retrieve_async(opened["id"])
    assert (dispute.charge, dispute.payment_intent, dispute.amount) == (charge, intent.id, 2_000)
    assert (dispute.status, dispute.currency) == ("lost", "inr")
    assert dispute.evidence_details.due_by is not None
    assert opened["status"] == "warning_needs_response"
    assert set(opened) == set(load("stripe", "dispute.docs_example.json"))
    payload = fake.build_event("charge.dispute.closed", opened["id"])
    event = stripe.Webhook.construct_event(payload, sign_stripe_webhook(payload, WHSEC), WHSEC)
    assert (event.type, event.data.object["id"]) == ("charge.dispute.closed", opened["id"])
    assert event.data.object["status"] == "lost"


async def test_an_unpaid_intent_cannot_be_disputed(
    fake: StripeFake, client: stripe.StripeClient
) -> None:
    intent = await client.v1.payment_intents.create_async(PI)

    with pytest.raises(ValueError, match="no successful charge"):
        fake.open_dispute(intent.id)


def test_blocking_client_works_against_a_threaded_fake() -> None:
    with StripeFake(api_key=API_KEY) as fake:
        client = stripe.StripeClient(API_KEY, base_addresses={"api": fake.url})
        intent = client.v1.payment_intents.create(PI)

        assert fake.payment_intents[intent.id]["amount"] == 2_000
