"""SendGrid's signed Event Webhook moves an email's status forward only; forgeries are refused."""

from __future__ import annotations

import io

from notify_testkit import Publish, delivery, payment, registered_user, status_is

from notify.providers.sendgrid.webhooks import SENDGRID_MAX_BODY_BYTES, EventWebhookVerifier
from rtmn_fakes.payloads import load
from rtmn_fakes.sendgrid import EventWebhookSigner, SendGridFake, build_events
from rtmn_shared.testing.running import RunningService
from rtmn_shared.testing.waiting import wait_for

URL = "/api/webhooks/sendgrid"


async def sent_order_email(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake
) -> tuple[str, str]:
    user = await registered_user(publish, notify.pool)
    await publish(payment(user.user_id))
    await wait_for(
        lambda: status_is(notify.pool, user.user_id, "order-confirmation", "sent"),
        message="the order email",
    )
    row = await delivery(notify.pool, user.user_id, "order-confirmation")
    assert row is not None
    return user.user_id, str(row["provider_message_id"])


async def post(notify: RunningService, body: bytes, headers: dict[str, str]) -> int:
    response = await notify.client.post(URL, data=body, headers=headers)
    return response.status


async def test_statuses_move_forward_only(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake, signer: EventWebhookSigner
) -> None:
    pool = notify.pool
    user_id, message_id = await sent_order_email(notify, publish, sendgrid)

    async def apply(*kinds: str) -> None:
        body = sendgrid.build_events_for(message_id, *kinds)
        assert await post(notify, body, signer.headers(body)) == 204

    await apply("processed", "delivered")
    assert await status_is(pool, user_id, "order-confirmation", "delivered")
    await apply("processed", "open", "deferred")  # late or engagement events: no step back
    assert await status_is(pool, user_id, "order-confirmation", "delivered")
    await apply("bounce")  # an asynchronous bounce after delivery does move it on
    assert await status_is(pool, user_id, "order-confirmation", "bounced")
    await apply("delivered")
    assert await status_is(pool, user_id, "order-confirmation", "bounced")


async def test_events_without_custom_args_are_matched_by_sendgrids_message_id(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake, signer: EventWebhookSigner
) -> None:
    user_id, message_id = await sent_order_email(notify, publish, sendgrid)
    body = build_events("dropped", sg_message_id=f"{message_id}.filterdrecv-p3mdw1-18-0")

    assert await post(notify, body, signer.headers(body)) == 204

    assert await status_is(notify.pool, user_id, "order-confirmation", "dropped")


async def test_tampered_unsigned_and_foreign_batches_are_rejected(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake, signer: EventWebhookSigner
) -> None:
    user_id, message_id = await sent_order_email(notify, publish, sendgrid)
    body = sendgrid.build_events_for(message_id, "delivered")
    headers = signer.headers(body)
    tampered = body.replace(b'"delivered"', b'"dropped"')
    unsigned = {"Content-Type": "application/json"}
    foreign = EventWebhookSigner().headers(body)

    response = await notify.client.post(URL, data=tampered, headers=headers)
    problem = await response.json(content_type=None)
    assert (response.status, response.content_type) == (400, "application/problem+json")
    assert problem["detail"] == "the event webhook signature is missing or does not verify"
    assert await post(notify, body, unsigned) == 400
    assert await post(notify, body, foreign) == 400
    # A body re-serialised on the way in (trailing CRLF stripped) no longer verifies either.
    assert await post(notify, body.rstrip(), headers) == 400
    assert await status_is(notify.pool, user_id, "order-confirmation", "sent")


def test_sendgrids_published_signature_vector_verifies_and_its_negatives_do_not() -> None:
    vector = load("sendgrid", "signed_event_webhook.test_vector.json")
    body = vector["raw_body"].encode()
    signature = vector["header_X-Twilio-Email-Event-Webhook-Signature"]
    timestamp = vector["header_X-Twilio-Email-Event-Webhook-Timestamp"]
    negatives = vector["negative_cases"]

    verifier = EventWebhookVerifier(vector["public_key_b64_der"])
    assert verifier.verify(body, signature, timestamp)
    assert not verifier.verify(body, negatives["wrong_signature"], timestamp)
    assert not verifier.verify(negatives["bad_payload"].encode(), signature, timestamp)
    assert not verifier.verify(body, signature, negatives["bad_timestamp"])
    assert not EventWebhookVerifier(negatives["wrong_public_key"]).verify(
        body, signature, timestamp
    )
    assert not verifier.verify(body, "not base64!", timestamp)
    assert not EventWebhookVerifier(None).verify(body, signature, timestamp)
    # With a tolerance, a correctly signed but years-old batch is refused.
    aged = EventWebhookVerifier(vector["public_key_b64_der"], tolerance_seconds=300)
    assert not aged.verify(body, signature, timestamp)


async def test_a_full_768_kb_batch_fits_and_a_larger_body_is_413(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake, signer: EventWebhookSigner
) -> None:
    user_id, message_id = await sent_order_email(notify, publish, sendgrid)
    one_open = len(sendgrid.build_events_for(message_id, "open")) - len(
        sendgrid.build_events_for(message_id)
    )
    opens = ["open"] * (768 * 1024 // one_open)  # engagement events: no status change
    body = sendgrid.build_events_for(message_id, "processed", "delivered", *opens)
    assert len(body) >= 768 * 1024

    assert await post(notify, body, signer.headers(body)) == 204
    assert await status_is(notify.pool, user_id, "order-confirmation", "delivered")

    too_big = b"[" + b" " * SENDGRID_MAX_BODY_BYTES + b"]"
    headers = signer.headers(too_big)
    response = await notify.client.post(URL, data=io.BytesIO(too_big), headers=headers)
    assert response.status == 413
    assert response.content_type == "application/problem+json"
