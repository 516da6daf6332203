"""The load: payments created by clients and captured by Razorpay's webhooks, on a schedule,
and the three effects each one must have, read where they land."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import asyncpg
import orjson
from _common import percentile
from faults_kit import AMOUNT

from loadkit.client import Client, ProtocolError
from loadkit.cpu import CpuUse
from rtmn_fakes.razorpay import build_webhook, webhook_headers

# The gateway limits creates to 30 a minute per client address, as deployed; the load comes from
# many clients, so each create is a new client's first request, from its own loopback address.
CLIENT_ADDRESSES = 4096


@dataclass
class Sent:
    payment_id: str
    webhook_at: float  # wall clock, like the database's timestamps


@dataclass
class Step:
    rate: float
    seconds: float
    sent: list[Sent] = field(default_factory=list)
    create_ms: list[float] = field(default_factory=list)
    webhook_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    e2e: dict[str, list[float]] = field(default_factory=dict)
    cpu: CpuUse | None = None

    @property
    def achieved(self) -> float:
        return len(self.sent) / self.elapsed if self.elapsed else 0.0

    def p99_all(self) -> float:
        return percentile(self.e2e.get("all", []), 99)

    def passed(self, p99_ms: float) -> bool:
        return not self.errors and self.p99_all() <= p99_ms

    def per_payment(self, ms: float) -> float:
        return ms / len(self.sent) if self.sent else float("nan")


class Load:
    """Starts payments through the gateway on a fixed schedule (open loop: a slow answer does
    not slow it)."""

    def __init__(
        self, gateway_port: int, webhook_secret: str, users: list[str], commerce_token: str
    ) -> None:
        self.http = Client("127.0.0.1", gateway_port)
        self.webhook_secret = webhook_secret
        self.users = users
        # The commerce side's service-scope create: it registers the order in the statement that
        # stores its payment, the cheaper of the two realistic paths (an order.placed event
        # before a user's create adds an event, its delivery and a commit per payment).
        self.authorization = f"Bearer {commerce_token}"
        self.count = 0

    async def run(self, step: Step) -> None:
        tasks: list[asyncio.Task[None]] = []
        started = time.monotonic()
        for i in range(int(step.rate * step.seconds)):
            delay = started + i / step.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(self.pay(step)))
        await asyncio.gather(*tasks)
        step.elapsed = time.monotonic() - started

    async def pay(self, step: Step) -> None:
        n = self.count
        self.count += 1
        try:
            created = await self._create(n, step)
            if created is not None:
                await self._capture(created, step)
        except (OSError, TimeoutError, ProtocolError) as error:
            step.errors.append(type(error).__name__)

    async def _create(self, n: int, step: Step) -> dict[str, str] | None:
        order = f"load-{uuid.uuid4().hex[:12]}"
        body = {
            "order_id": order,
            "order_number": order,
            "merchant_id": "m-load",
            "amount": AMOUNT,
            "currency": "INR",
            "gateway": "razorpay",
            "user_id": self.users[n % len(self.users)],
        }
        headers = {
            "Authorization": self.authorization,
            "Idempotency-Key": order,
            "Content-Type": "application/json",
        }
        address = n % CLIENT_ADDRESSES
        started = time.perf_counter()
        answer = await self.http.post(
            "/api/payments/create",
            orjson.dumps(body),
            headers,
            from_address=f"127.1.{address // 250}.{address % 250 + 1}",
        )
        if answer.status != 201:
            step.errors.append(f"create {answer.status}")
            return None
        step.create_ms.append((time.perf_counter() - started) * 1000)
        created: dict[str, str] = orjson.loads(answer.body)
        return created

    async def _capture(self, created: dict[str, str], step: Step) -> None:
        webhook = captured(created["gateway_order_id"])
        headers = webhook_headers(webhook, self.webhook_secret)
        sent_at = time.time()
        started = time.perf_counter()
        answer = await self.http.post("/api/webhooks/razorpay", webhook, headers)
        if answer.status != 200:
            step.errors.append(f"webhook {answer.status}")
            return
        step.webhook_ms.append((time.perf_counter() - started) * 1000)
        step.sent.append(Sent(created["payment_id"], sent_at))

    def close(self) -> None:
        self.http.close()


def captured(order_id: str) -> bytes:
    """Razorpay's payment.captured for a customer who paid the whole order by UPI."""
    payment = {
        "id": f"pay_{uuid.uuid4().hex[:14]}",
        "entity": "payment",
        "amount": AMOUNT,
        "currency": "INR",
        "status": "captured",
        "order_id": order_id,
        "method": "upi",
        "captured": True,
    }
    return build_webhook("payment.captured", payment=payment, created_at=int(time.time()))


async def effects_of(conn: asyncpg.Connection, step: Step, timeout: float = 60) -> None:  # noqa: ASYNC109
    """Waits for every payment's three effects (the ledger entry's created_at, the mail's and
    the push's sent_at), then their latencies from the webhook."""
    ids = [s.payment_id for s in step.sent]
    sources = [f"payment:{i}" for i in ids]
    deadline = time.monotonic() + timeout
    while True:
        wallet = await conn.fetch(
            "SELECT payment_id, extract(epoch FROM created_at) AS at FROM wallet.entries "
            "WHERE kind = 'cashback' AND payment_id = ANY($1)",
            ids,
        )
        notes = await conn.fetch(
            "SELECT substr(source, 9) AS payment_id, channel, extract(epoch FROM sent_at) AS at"
            " FROM notify.deliveries WHERE source = ANY($1) AND sent_at IS NOT NULL",
            sources,
        )
        if len(wallet) + len(notes) >= 3 * len(ids) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    at: dict[str, dict[str, float]] = {i: {} for i in ids}
    for row in wallet:
        at[row["payment_id"]]["wallet"] = float(row["at"])
    for row in notes:
        at[row["payment_id"]]["email" if row["channel"] == "email" else "push"] = float(row["at"])
    sent = {s.payment_id: s.webhook_at for s in step.sent}
    step.e2e = {k: [] for k in ("wallet", "email", "push", "all")}
    missing = 0
    for pid, effects in at.items():
        for kind, when in effects.items():
            step.e2e[kind].append((when - sent[pid]) * 1000)
        if len(effects) == 3:
            step.e2e["all"].append((max(effects.values()) - sent[pid]) * 1000)
        else:
            missing += 1
    if missing:
        step.errors.append(f"{missing} payments without all three effects after {timeout:.0f} s")
