"""`make demo`: the payment story told against the running suite, through the gateway.

A user registers, registers a device, places an order (the commerce side's `order.placed`) and
pays it through Razorpay, naming the order only; the signed `payment.captured`
webhook arrives; the wallet credit, the order email and the push appear; a partial refund
follows and the coins are reversed. Every step is printed on one timeline.

Reads .run/env (the suite `make run` started): AMQP_URL, RAZORPAY_WEBHOOK_SECRET, and signs
tokens with .run/keys/jwt-private.pem.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson

from rtmn_shared.cli.token import mint
from rtmn_shared.events import brokers
from rtmn_shared.events.catalogue import OrderPlaced, UserRegistered
from rtmn_shared.events.envelope import CloudEvent, EventData
from rtmn_shared.events.publishers import login_of
from rtmn_shared.events.topology import event_message
from rtmn_shared.money import Money
from rtmn_shared.settings import DEFAULT_AUDIENCE, DEFAULT_ISSUER, service_logins
from rtmn_shared.suite import EXCHANGE

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


class Timeline:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def say(self, actor: str, what: str) -> None:
        print(f"{(time.monotonic() - self.started) * 1000:8.0f} ms  {actor:<9} {what}", flush=True)


async def until(
    probe: Callable[[], Awaitable[T | None]],
    what: str,
    timeout: float = 30.0,  # noqa: ASYNC109
    interval: float = 0.05,
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await probe()
        if found is not None:
            return found
        await asyncio.sleep(interval)
    raise SystemExit(f"demo: gave up waiting for {what} after {timeout:.0f} s")


class Suite:
    def __init__(self, http: aiohttp.ClientSession, gateway: str, key: str) -> None:
        self.http, self.gateway, self.key = http, gateway, key

    def auth(self, user: str, scope: str = "") -> dict[str, str]:
        # The services' own JWT_ISSUER/JWT_AUDIENCE, when .run/env (or .env) sets them.
        issuer = os.environ.get("JWT_ISSUER", DEFAULT_ISSUER)
        audience = os.environ.get("JWT_AUDIENCE", DEFAULT_AUDIENCE)
        token = mint(self.key, user, scope, 600, issuer=issuer, audience=audience)
        return {"Authorization": f"Bearer {token}"}

    async def call(
        self, method: str, path: str, *, expect: int = 200, pending: int = 0, **kwargs: Any
    ) -> Any:
        """The answer's body; None if the status is `pending` (not there yet: ask again)."""
        async with self.http.request(method, self.gateway + path, **kwargs) as response:
            body = await response.read()
            if response.status == pending:
                return None
            if response.status != expect:
                raise SystemExit(
                    f"demo: {method} {path} answered {response.status}: {body[:300]!r}"
                )
            return orjson.loads(body) if body else None


def razorpay_webhook(event: str, payload: dict[str, Any]) -> bytes:
    body = {
        "entity": "event",
        "account_id": "acc_demo",
        "event": event,
        "contains": list(payload),
        "payload": payload,
        "created_at": int(time.time()),
    }
    return orjson.dumps(body)


async def post_webhook(suite: Suite, secret: str, body: bytes) -> Any:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Razorpay-Signature": signature,
        "X-Razorpay-Event-Id": f"evt_{uuid.uuid4().hex}",
        "Content-Type": "application/json",
    }
    return await suite.call("POST", "/api/webhooks/razorpay", data=body, headers=headers)


async def publish(amqp_url: str, data: EventData) -> None:
    # user.registered and order.placed come from outside the suite; the demo plays that system.
    event = CloudEvent.of(data, source="rtmn/demo")
    connection = await brokers.connect(amqp_url)  # one address, or a cluster's nodes
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EXCHANGE)
        message = event_message(
            event.to_json(), message_id=str(event.id), type=event.type, user_id=login_of(amqp_url)
        )
        await exchange.publish(message, routing_key=event.type)
    finally:
        await connection.close()


def producer_url(name: str) -> str:
    """The broker as the outside producer the demo plays (`accounts`: user.registered,
    `commerce`: order.placed), with <NAME>_AMQP_PASSWORD; else AMQP_URL as given."""
    return service_logins(name).get("amqp_url") or os.environ.get(
        "AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"
    )


async def story(suite: Suite, secret: str) -> None:
    line = Timeline()
    user_id = f"demo-{uuid.uuid4().hex[:8]}"
    user = suite.auth(user_id)

    await publish(
        producer_url("accounts"),
        UserRegistered(
            user_id=user_id,
            email=f"{user_id}@example.com",
            first_name="Asha",
            tier="gold",
            locale="en-IN",
        ),
    )
    line.say("user", f"{user_id} registered (user.registered published), tier gold")
    await suite.call(
        "PUT",
        "/api/notify/devices",
        headers=user,
        json={"token": f"fcm-{user_id}", "platform": "android"},
    )
    line.say("notify", "device registered for push")

    order = f"ORD-{uuid.uuid4().hex[:6].upper()}"
    await publish(
        producer_url("commerce"),
        OrderPlaced(
            order_id=order,
            order_number=order,
            user_id=user_id,
            merchant_id="m-demo",
            amount=249_900,
            currency="INR",
            items_summary="1 item: running shoes",
        ),
    )
    line.say("commerce", f"order {order} placed (order.placed published): ₹2,499.00")

    async def pay() -> Any:
        # A user's create names the order only; until payments has consumed its order.placed
        # the answer is a 404 to retry.
        return await suite.call(
            "POST",
            "/api/payments/create",
            expect=201,
            pending=404,
            headers={**user, "Idempotency-Key": f"demo-{order}"},
            json={"order_id": order, "gateway": "razorpay"},
        )

    # As its 404's Retry-After asks: the gateway allows a burst of 10 creates, then one per 2 s.
    created = await until(pay, f"payments to learn of order {order}", interval=1.0)
    payment_id, rzp_order = created["payment_id"], created["gateway_order_id"]
    amount = Money(created["amount"], created["currency"]).format()
    line.say("payments", f"{order}: {amount}, the order's amount → Razorpay order {rzp_order}")

    rzp_payment = f"pay_{uuid.uuid4().hex[:14]}"
    captured = razorpay_webhook(
        "payment.captured",
        {
            "payment": {
                "entity": {
                    "id": rzp_payment,
                    "entity": "payment",
                    "amount": 249_900,
                    "currency": "INR",
                    "status": "captured",
                    "order_id": rzp_order,
                    "method": "upi",
                    "captured": True,
                }
            }
        },
    )
    await post_webhook(suite, secret, captured)
    line.say("razorpay", f"signed payment.captured webhook accepted ({rzp_payment})")

    async def status(wanted: str) -> dict[str, Any] | None:
        view = await suite.call("GET", f"/api/payments/{payment_id}", headers=user)
        return view if view["status"] == wanted else None  # type: ignore[no-any-return]

    await until(lambda: status("captured"), "the payment to be captured")
    line.say("payments", "payment captured; payment.success emitted through the outbox")

    async def ledger(kind: str) -> dict[str, Any] | None:
        page = await suite.call("GET", "/api/wallet/ledger", headers=user)
        return next((e for e in page["entries"] if e["kind"] == kind), None)

    async def notification(channel: str) -> dict[str, Any] | None:
        page = await suite.call("GET", "/api/notify/notifications", headers=user)
        return next(
            (
                n
                for n in page["items"]
                if n["channel"] == channel and n["status"] in ("sent", "delivered")
            ),
            None,
        )

    async def watch(
        what: str,
        probe: Callable[[], Awaitable[dict[str, Any] | None]],
        describe: Callable[[dict[str, Any]], str],
    ) -> None:
        found = await until(probe, what)
        line.say(what, describe(found))

    await asyncio.gather(
        watch(
            "wallet",
            lambda: ledger("cashback"),
            lambda e: f"+{e['coins']} REZ coins credited (balance {e['balance_after']})",
        ),
        watch(
            "email",
            lambda: notification("email"),
            lambda n: f"order confirmation sent via {n['provider']} ({n['template']})",
        ),
        watch(
            "push",
            lambda: notification("push"),
            lambda n: f"'{n['title']}' pushed via {n['provider']}",
        ),
    )

    admin = suite.auth("ops-demo", "payments:refund")
    refund = await suite.call(
        "POST",
        f"/api/payments/{payment_id}/refunds",
        expect=201,
        headers={**admin, "Idempotency-Key": f"demo-refund-{order}"},
        json={"amount": 99_900},
    )
    line.say("payments", f"partial refund of ₹999.00 requested ({refund['status']})")
    processed = razorpay_webhook(
        "refund.processed",
        {
            "refund": {
                "entity": {
                    "id": refund["gateway_refund_id"],
                    "entity": "refund",
                    "amount": 99_900,
                    "currency": "INR",
                    "payment_id": rzp_payment,
                    "status": "processed",
                    "notes": {"refund_id": refund["refund_id"]},
                }
            }
        },
    )
    await post_webhook(suite, secret, processed)
    line.say("razorpay", "signed refund.processed webhook accepted")
    await until(lambda: status("partially_refunded"), "the refund to be processed")
    line.say("payments", "payment partially refunded; payment.refunded emitted")
    await watch(
        "wallet",
        lambda: ledger("cashback_reversal"),
        lambda e: f"{e['coins']} coins reversed (balance {e['balance_after']})",
    )
    line.say("demo", "the story is complete")


def load_env(path: Path) -> None:
    """The suite's environment as `make run` wrote it: it wins over this process's own, which may
    be another suite's (a test run's)."""
    for raw in path.read_text().splitlines():
        key, sep, value = raw.partition("=")
        if sep and key.isidentifier():
            os.environ[key] = value.strip().strip("'")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gateway", default="http://127.0.0.1:8080")
    parser.add_argument("--env", type=Path, default=ROOT / ".run" / "env")
    parser.add_argument("--key", type=Path, default=ROOT / ".run" / "keys" / "jwt-private.pem")
    args = parser.parse_args()
    if args.env.exists():
        load_env(args.env)
    secret = os.environ.get("RAZORPAY_WEBHOOK_SECRET")
    if not secret:
        sys.exit("demo: RAZORPAY_WEBHOOK_SECRET is not set (run `make run` first)")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        await story(Suite(http, args.gateway, args.key.read_text()), secret)


if __name__ == "__main__":
    asyncio.run(main())
