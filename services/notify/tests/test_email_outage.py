"""An email outage retries the email alone: the push for the same event never waits for it."""

from __future__ import annotations

from notify_testkit import Publish, add_devices, payment, registered_user, status_is, unique

from rtmn_fakes.fcm import FcmFake
from rtmn_fakes.sendgrid import SendGridFake
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import RunningService
from rtmn_shared.testing.waiting import wait_for


async def test_sendgrid_503_three_times_then_202_sends_once_and_push_goes_first(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake, fcm: FcmFake
) -> None:
    pool = notify.pool
    user = await registered_user(publish, pool)
    email = str(user.email)
    await wait_for(lambda: sendgrid.mails_to(email), message="the welcome email")
    token = unique("tok")
    await add_devices(pool, user.user_id, token)
    sendgrid.fail_next(3, status=503, path="/v3/mail/send")

    await publish(payment(user.user_id))
    await wait_for(
        lambda: status_is(pool, user.user_id, "order-confirmation", "sent"), message="email sent"
    )
    await wait_for(
        lambda: status_is(pool, user.user_id, "payment-success", "sent"), message="push sent"
    )

    tries = [r for r in sendgrid.requests_to("/v3/mail/send") if _to(r.json) == email][1:]
    assert [r.status for r in tries] == [503, 503, 503, 202]
    orders = [m for m in sendgrid.mails_to(email) if m.template_id == "d-order01"]
    assert len(orders) == 1
    [push] = fcm.requests_to("messages:send")[-1:]
    assert push.json["message"]["token"] == token
    # The push was out before SendGrid even saw the email's second try.
    assert push.received_at < tries[1].received_at
    row = await pool.fetchrow(
        "SELECT attempts, last_error FROM deliveries WHERE user_id = $1 AND channel = 'email' "
        "AND template = 'order-confirmation'",
        user.user_id,
    )
    assert row is not None
    assert (row["attempts"], row["last_error"]) == (4, None)


async def test_a_rejected_address_is_recorded_failed_and_not_retried(
    notify: RunningService, publish: Publish, sendgrid: SendGridFake
) -> None:
    pool = notify.pool
    refusal = {"errors": [{"message": "Does not contain a valid address.", "field": "to"}]}
    sendgrid.fail_next(1, status=400, body=refusal, path="/v3/mail/send")

    user = await registered_user(publish, pool)
    await wait_for(
        lambda: status_is(pool, user.user_id, "welcome", "failed"), message="welcome failed"
    )

    row = await pool.fetchrow(
        "SELECT attempts, last_error FROM deliveries WHERE user_id = $1", user.user_id
    )
    assert row is not None
    assert row["attempts"] == 1
    assert row["last_error"] == "sendgrid answered 400: Does not contain a valid address."
    assert sendgrid.mails_to(str(user.email)) == []


def _to(body: object) -> str | None:
    try:
        return body["personalizations"][0]["to"][0]["email"]  # type: ignore[index,no-any-return]
    except (KeyError, IndexError, TypeError):
        return None


async def test_the_providers_words_stay_in_the_log_and_the_user_reads_ours(
    notify: RunningService, suite: Suite, publish: Publish, sendgrid: SendGridFake
) -> None:
    pool = notify.pool
    secret_words = "LEAK-7f3a: account acc_42 is on the internal suppression list sg-eu-3"
    sendgrid.fail_next(
        1, status=400, body={"errors": [{"message": secret_words}]}, path="/v3/mail/send"
    )
    user = await registered_user(publish, pool)
    await wait_for(
        lambda: status_is(pool, user.user_id, "welcome", "failed"), message="welcome failed"
    )

    response = await notify.client.get(
        "/api/notify/notifications", headers=suite.bearer(user.user_id)
    )
    text = await response.text()
    assert response.status == 200
    assert "LEAK-7f3a" not in text
    assert "acc_42" not in text
    [welcome] = [i for i in (await response.json())["items"] if i["template"] == "welcome"]
    assert welcome["last_error"] == "the provider did not accept it"
    kept = await pool.fetchval("SELECT last_error FROM deliveries WHERE id = $1", welcome["id"])
    assert "LEAK-7f3a" in kept  # the operators' record keeps it
