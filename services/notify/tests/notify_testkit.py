"""Helpers notify's tests share (a uniquely named module: tests dirs share one sys.path)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from notify.app import SERVICE
from notify.settings import Settings
from rtmn_fakes.fcm import FcmFake
from rtmn_fakes.sendgrid import EventWebhookSigner, SendGridFake
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import PaymentSuccess, UserRegistered
from rtmn_shared.events.envelope import CloudEvent, EventData
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.producers import Producers
from rtmn_shared.testing.running import RunningService, running
from rtmn_shared.testing.waiting import wait_for

# Enough retries for "503 three times, then 202"; short so the suite stays fast.
RETRY_DELAYS_MS = (100, 200, 300, 400)


@pytest.fixture(scope="module")
async def sendgrid() -> AsyncIterator[SendGridFake]:
    async with SendGridFake() as fake:
        yield fake


@pytest.fixture(scope="module")
async def fcm() -> AsyncIterator[FcmFake]:
    async with FcmFake(project_id="rtmn-notify-test") as fake:
        yield fake


@pytest.fixture(scope="module")
def signer() -> EventWebhookSigner:
    return EventWebhookSigner()


def live_settings(
    sendgrid: SendGridFake, fcm: FcmFake, signer: EventWebhookSigner, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "sendgrid_api_key": sendgrid.api_key,
        "sendgrid_api_url": sendgrid.url,
        "sendgrid_from_email": "orders@rez.test",
        "sendgrid_template_welcome": "d-welcome01",
        "sendgrid_template_order_confirmation": "d-order01",
        "sendgrid_template_payment_failed": "d-failed01",
        "sendgrid_template_payment_refunded": "d-refund01",
        "sendgrid_webhook_public_key": signer.public_key,
        "firebase_project_id": fcm.project_id,
        "fcm_access_token": fcm.access_token,
        "fcm_url": fcm.url + "/v1/projects/{0}/messages:send",
        "app_url": "https://rez.test",
        "campaign_threshold": 3,
        "campaign_batch_size": 2,
        "unsubscribe_secret": "test-unsubscribe-secret-0123456789abcdef",
        "notify_public_url": "https://api.rez.test",
        "deferred_sweep_seconds": 0.2,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
async def notify(
    suite: Suite, sendgrid: SendGridFake, fcm: FcmFake, signer: EventWebhookSigner
) -> AsyncIterator[RunningService]:
    settings = live_settings(sendgrid, fcm, signer)
    async with running(SERVICE, settings, retry_delays_ms=RETRY_DELAYS_MS) as svc:
        yield svc


Publish = Callable[..., Awaitable[CloudEvent]]


@pytest.fixture(scope="module")
async def publish(producers: Producers) -> Publish:
    """Publishes an event as its producer's relay would; pass `event=` to send one again."""

    async def send(data: EventData | None = None, *, event: CloudEvent | None = None) -> CloudEvent:
        if event is None:
            assert data is not None
            event = CloudEvent.of(data, source="rtmn/test")
        await producers.publish(event)
        return event

    return send


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def payment(user_id: str, amount: int = 149_900) -> PaymentSuccess:
    order = unique("ord")
    return PaymentSuccess(
        payment_id=unique("pay"),
        order_id=order,
        order_number=f"R{uuid.uuid4().int % 10**8:08d}",
        user_id=user_id,
        merchant_id="m-1",
        amount=amount,
        currency="INR",
        gateway="razorpay",
        gateway_payment_id=unique("pay_rzp"),
        paid_at=datetime(2026, 11, 27, 10, 30, tzinfo=UTC),
    )


async def registered_user(
    publish: Publish,
    pool: Pool,
    *,
    first_name: str = "Asha",
    email: str | None = None,
    locale: str | None = "en-IN",
) -> UserRegistered:
    user_id = unique("user")
    user = UserRegistered(
        user_id=user_id,
        email=email or f"{user_id}@example.com",
        first_name=first_name,
        phone="+919876543210",
        tier="gold",
        locale=locale,
    )
    await publish(user)
    await wait_for(
        lambda: pool.fetchval("SELECT true FROM recipients WHERE user_id = $1", user_id),
        message="the recipient read model",
    )
    return user


async def add_devices(pool: Pool, user_id: str, *tokens: str) -> None:
    for token in tokens:
        await pool.execute(
            "INSERT INTO devices (token, user_id, platform) VALUES ($1, $2, 'android')",
            token,
            user_id,
        )


def zone_at_hour(hour: int) -> str:
    """A fixed-offset IANA zone where it is `hour` o'clock now (give or take the minutes), so a
    quiet-hours test means the same at any time of day. Etc/GMT-5 is UTC+5."""
    for offset in range(-12, 15):
        if (datetime.now(UTC).hour + offset) % 24 == hour:
            return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"
    raise AssertionError(f"no zone is at {hour}:00 now")


async def live_in(pool: Pool, user_id: str, tz: str) -> None:
    """Sets the user's time zone (quiet hours are 21:00-09:00 there)."""
    await pool.execute(
        "INSERT INTO recipients (user_id, tz, as_of) VALUES ($1, $2, '-infinity') "
        "ON CONFLICT (user_id) DO UPDATE SET tz = EXCLUDED.tz",
        user_id,
        tz,
    )


async def in_daytime(pool: Pool, *user_ids: str) -> None:
    """Puts the users where it is mid-afternoon, so promotional messages go at once."""
    for user_id in user_ids:
        await live_in(pool, user_id, zone_at_hour(14))


async def delivery(pool: Pool, user_id: str, template: str) -> dict[str, object] | None:
    """The user's delivery of `template`: welcome, order-confirmation, payment-success..."""
    row = await pool.fetchrow(
        "SELECT * FROM deliveries WHERE user_id = $1 AND template = $2", user_id, template
    )
    return dict(row) if row else None


async def status_is(pool: Pool, user_id: str, template: str, status: str) -> bool:
    row = await delivery(pool, user_id, template)
    return row is not None and row["status"] == status


def consumed(queue: str) -> float:
    """Messages of `queue` the consumers applied (a no-op duplicate counts too)."""
    sample = REGISTRY.get_sample_value(
        "rtmn_events_consumed_total", {"queue": queue, "outcome": "applied"}
    )
    return sample or 0.0
