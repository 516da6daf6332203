"""The payment stream the fault tests and bench/load.py drive through the suite's processes.

Payments go in as the commerce side and Razorpay put them in: `POST /api/payments/create` with
the `service` scope (which registers the order and asks the Razorpay contract fake for one),
the fake captures the order, and its signed `payment.captured` webhook is posted. The effects
are counted where they really land: the wallet ledger's rows, the mails the SendGrid fake
accepted, the pushes the FCM fake delivered.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import secrets
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from rtmn_fakes.fcm import FcmFake
from rtmn_fakes.razorpay import RazorpayFake, webhook_headers
from rtmn_fakes.sendgrid import SendGridFake
from rtmn_shared.events import brokers
from rtmn_shared.events.catalogue import UserRegistered
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.publishers import login_of
from rtmn_shared.events.topology import event_message
from rtmn_shared.suite import EXCHANGE
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.processes import Supervisor, free_port, procfile
from rtmn_shared.testing.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
# The Procfile `make run` starts; RTMN_PROCFILE names another layout of the same roles (e.g.
# bench/Procfile.roles, one process per role) to compare them.
PROCFILE = ROOT / os.environ.get("RTMN_PROCFILE", "Procfile")
# The services a payment passes through: the three it touches and analytics, which consumes
# every event. OTP, media and geo take no part in a payment.
PATH_SERVICES = ("payments", "wallet", "notify", "analytics")
# Their processes, as the Procfile names them.
PAYMENT_PATH = tuple(
    name for name, spec in procfile(PROCFILE).items() if spec.service in PATH_SERVICES
)
ORDER_TEMPLATE = "d-orderconfirmation"
AMOUNT = 49_900  # ₹499: 24 coins of cashback at 5 %
EFFECTS = ("wallet", "email", "push")
# The queues a payment.success goes to, and where each one dead-letters.
PAYMENT_QUEUES = (
    "wallet.credit-cashback",
    "notify.email-order-confirmation",
    "notify.push-payment-success",
)


# ------------------------------------------------------------------------- providers ----


# The notify client's timeout for a SendGrid call. The fakes share the test process's GIL with
# the load it drives: a healthy answer can take over a second there, and a send that times out
# after SendGrid accepted it is sent again (SendGrid has no idempotency key).
EMAIL_TIMEOUT_SECONDS = 2.0


class SendGridWithOutages(SendGridFake):
    """SendGrid that can be taken down: while down, half the requests answer 503 at once and
    the other half hang past the client's timeout before a 503; none of them sends a mail."""

    def __init__(self, api_key: str, hang_seconds: float) -> None:
        super().__init__(api_key)
        self.hang_seconds = hang_seconds
        self.down = False
        self.refused = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.route(r.method, r.path, self._unless_down(r.handler)) for r in super().routes()]

    def _unless_down(self, handler: Any) -> Any:
        async def answer(request: web.Request) -> web.StreamResponse:
            if not self.down:
                response: web.StreamResponse = await handler(request)
                return response
            with self._lock:
                self.refused += 1
                hang = self.refused % 2 == 0
            if hang:
                # The provider hanging is the fault itself, not a wait for a condition.
                await asyncio.sleep(self.hang_seconds)
            return web.json_response(self.fault_body(503), status=503)

        return answer


@dataclass
class Providers:
    """The contract fakes, each on a loop of its own in a thread, and their credentials."""

    razorpay: RazorpayFake
    sendgrid: SendGridWithOutages
    fcm: FcmFake
    webhook_secret: str

    @classmethod
    def start(cls) -> Providers:
        tag = secrets.token_hex(6)
        providers = cls(
            RazorpayFake(key_id=f"rzp_test_faults{tag}", key_secret=f"rzp-secret-{tag}"),
            SendGridWithOutages(
                f"SG.faults-{tag}.key-{tag}", hang_seconds=EMAIL_TIMEOUT_SECONDS * 2
            ),
            FcmFake(project_id=f"rtmn-faults-{tag}", access_token=f"fcm-token-{tag}"),
            f"whsec-faults-{tag}",
        )
        for fake in (providers.razorpay, providers.sendgrid, providers.fcm):
            fake.start_in_thread()
        return providers

    def stop(self) -> None:
        for fake in (self.razorpay, self.sendgrid, self.fcm):
            fake.stop()

    def environ(self) -> dict[str, str]:
        return {
            "RAZORPAY_KEY_ID": self.razorpay.key_id,
            "RAZORPAY_KEY_SECRET": self.razorpay.key_secret,
            "RAZORPAY_API_BASE": self.razorpay.url,
            "RAZORPAY_WEBHOOK_SECRET": self.webhook_secret,
            "SENDGRID_API_KEY": self.sendgrid.api_key,
            "SENDGRID_API_URL": self.sendgrid.url,
            "SENDGRID_TIMEOUT_SECONDS": str(EMAIL_TIMEOUT_SECONDS),
            "SENDGRID_TEMPLATE_ORDER_CONFIRMATION": ORDER_TEMPLATE,
            "FIREBASE_PROJECT_ID": self.fcm.project_id,
            "FCM_ACCESS_TOKEN": self.fcm.access_token,
            "FCM_URL": self.fcm.url + "/v1/projects/{0}/messages:send",
        }

    def secrets(self) -> list[str]:
        """What no log line may carry."""
        return [
            self.razorpay.key_secret,
            self.webhook_secret,
            self.sendgrid.api_key,
            self.fcm.access_token,
        ]


# ----------------------------------------------------------------- the running suite ----


def suite_environ(
    suite: Suite, database_url: str, amqp_url: str, providers: Providers
) -> dict[str, str]:
    """What `make run` gives every process, on the given database and vhost, this run's Redis."""
    return {
        **suite.environ(),
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        # The per-user limit (5 creates in 15 minutes) is a business rule, not what is tested.
        "CREATE_LIMIT_PER_WINDOW": "100000000",
        # A claimed delivery's lease need only outlast one provider call (timeouts of 2 s
        # here); with the default 120 s, a send cut short by a fault waits 2.6 minutes of
        # retries for its lease to run out (see docs/security.md, "Faults and load").
        "DELIVERY_LEASE_SECONDS": "5",
        "FCM_TIMEOUT_SECONDS": "2",
        **providers.environ(),
    }


def migrate_all(env: Mapping[str, str], services: Iterable[str]) -> None:
    for name in services:
        subprocess.run(
            [str(ROOT / ".venv/bin/python"), "-m", name, "migrate"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            timeout=120,
        )


def supervisor(env: Mapping[str, str], logs: Path) -> Supervisor:
    return Supervisor(ROOT, env, logs, procfile(PROCFILE))


def consumers_of(service: str) -> str:
    """The payment-path process that runs `service`'s consumers."""
    specs = procfile(PROCFILE)
    return next(
        n for n in PAYMENT_PATH if specs[n].service == service and "consumers" in specs[n].roles
    )


@dataclass
class User:
    user_id: str
    token: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def publish_raw(amqp_url: str, body: bytes, routing_key: str, message_id: str) -> None:
    """Publishes as a producer outside the suite would (user.registered, a poison message)."""
    connection = await brokers.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EXCHANGE)
        await exchange.publish(
            event_message(body, message_id=message_id, user_id=login_of(amqp_url)),
            routing_key=routing_key,
        )
    finally:
        await connection.close()


async def register_users(
    suite: Suite, amqp_url: str, notify_url: str, database_url: str, count: int
) -> list[User]:
    """Users as the outside world makes them: `user.registered` (with a phone, which no log may
    show), then a device each through notify's API, so every payment has a mail and a push."""
    users = [User(f"faults-{secrets.token_hex(4)}-{n}", "") for n in range(count)]
    for n, user in enumerate(users):
        user.token = suite.token(user.user_id, ttl_seconds=6 * 3600)
        event = CloudEvent.of(
            UserRegistered(
                user_id=user.user_id,
                email=f"{user.user_id}@example.com",
                first_name="Asha",
                phone=f"+9198{n:08d}",
                tier="gold",
                locale="en-IN",
            ),
            source="rtmn/faults",
        )
        await publish_raw(amqp_url, event.to_json(), event.type, str(event.id))
    async with aiohttp.ClientSession() as http:
        for user in users:
            async with http.put(
                f"{notify_url}/api/notify/devices",
                headers=user.bearer,
                json={"token": f"fcm-{user.user_id}", "platform": "android"},
            ) as response:
                assert response.status in (200, 201, 204), await response.text()
    ids = [u.user_id for u in users]

    async def known_everywhere() -> bool:
        conn = await asyncpg.connect(database_url, user="postgres")
        try:
            notify = await conn.fetchval(
                "SELECT count(*) FROM notify.recipients WHERE user_id = ANY($1)", ids
            )
            wallet = await conn.fetchval(
                "SELECT count(*) FROM wallet.users WHERE user_id = ANY($1)", ids
            )
        finally:
            await conn.close()
        return bool(notify == wallet == count)

    await wait_for(known_everywhere, timeout=60, interval=0.2, message="users registered")
    return users


# ---------------------------------------------------------------- the payment stream ----


@dataclass
class Payment:
    order: str  # our order id and order number (the mail and the push name it)
    user: User
    payment_id: str = ""
    gateway_order_id: str = ""
    gateway_payment_id: str = ""  # the Razorpay payment, once the fake has captured the order
    captured_at: float = 0.0  # wall clock when the captured webhook was accepted


@dataclass
class Stream:
    """One batch of payments, and how far it got."""

    label: str
    payments: list[Payment]
    created: int = 0
    captured: int = 0
    retried: Counter[str] = field(default_factory=Counter)
    ended: float = 0.0

    @classmethod
    def of(cls, label: str, users: list[User], n: int) -> Stream:
        nonce = secrets.token_hex(3)
        return cls(
            label, [Payment(f"{label}-{nonce}-{i:05d}", users[i % len(users)]) for i in range(n)]
        )

    @property
    def by_order(self) -> dict[str, Payment]:
        return {p.order: p for p in self.payments}


class Client:
    """Posts as clients and Razorpay would: retrying until answered, as both really do."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        payments_url: str,
        providers: Providers,
        commerce_token: str,
        *,
        patience: float = 90.0,
    ) -> None:
        self.http = http
        self.url = payments_url
        self.providers = providers
        # The commerce side places each order with its payment: a service-scope create.
        self.commerce = {"Authorization": f"Bearer {commerce_token}"}
        self.patience = patience

    async def create(self, payment: Payment, stream: Stream) -> None:
        body = {
            "order_id": payment.order,
            "order_number": payment.order,
            "merchant_id": "m-faults",
            "amount": AMOUNT,
            "currency": "INR",
            "gateway": "razorpay",
            "user_id": payment.user.user_id,
        }
        headers = {**self.commerce, "Idempotency-Key": f"create-{payment.order}"}
        created = await self._post(
            "/api/payments/create",
            stream,
            "create",
            201,
            json=body,
            headers=headers,
        )
        payment.payment_id = created["payment_id"]
        payment.gateway_order_id = created["gateway_order_id"]
        stream.created += 1

    def webhook(self, payment: Payment, event: str = "payment.captured") -> bytes:
        """The signed body Razorpay sends for `event` once the customer paid the order."""
        fake = self.providers.razorpay
        if not payment.gateway_payment_id:
            payment.gateway_payment_id = fake.capture(payment.gateway_order_id)["id"]
        return fake.build_webhook(event, payment_id=payment.gateway_payment_id)

    async def deliver(self, body: bytes, event_id: str, stream: Stream) -> dict[str, Any]:
        headers = webhook_headers(body, self.providers.webhook_secret, event_id)
        return await self._post(
            "/api/webhooks/razorpay",
            stream,
            "webhook",
            200,
            data=body,
            headers=headers,
        )

    async def pay(self, payment: Payment, stream: Stream) -> None:
        await self.create(payment, stream)
        body = self.webhook(payment)
        await self.deliver(body, f"evt_{payment.order}_captured", stream)
        payment.captured_at = time.time()
        stream.captured += 1

    async def _post(
        self,
        path: str,
        stream: Stream,
        what: str,
        expect: int,
        **kwargs: Any,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + self.patience
        pause = 0.05
        while True:
            try:
                async with self.http.post(self.url + path, **kwargs) as response:
                    text = await response.read()
                    if response.status == expect:
                        answer: dict[str, Any] = json.loads(text)
                        return answer
                    if response.status == 409 and b"still in progress" in text and what == "create":
                        # The key of an attempt cut short by an outage stays claimed until it is
                        # abandoned (payments/key_store.py, 120 s): a client that will not wait
                        # starts over with a new key. No payment was made under it, or the retry
                        # would have resumed it.
                        kwargs["headers"] = {
                            **kwargs["headers"],
                            "Idempotency-Key": f"{kwargs['headers']['Idempotency-Key']}+",
                        }
                        problem = "409 stuck key"
                    elif response.status < 500 and response.status != 429:
                        raise AssertionError(f"{what} answered {response.status}: {text[:300]!r}")
                    else:
                        problem = f"{response.status}"
            except (aiohttp.ClientError, TimeoutError) as error:
                problem = type(error).__name__
            stream.retried[f"{what} {problem}"] += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} still failing after {self.patience}s: {problem}")
            await asyncio.sleep(pause)  # a client's backoff before it tries again
            pause = min(pause * 2, 1.0)


async def drive(
    stream: Stream, work: Callable[[Payment], Awaitable[None]], in_flight: int = 32
) -> None:
    """Runs `work` for every payment of the stream, `in_flight` at a time, in order of start."""
    queue: asyncio.Queue[Payment] = asyncio.Queue()
    for payment in stream.payments:
        queue.put_nowait(payment)

    async def worker() -> None:
        while not queue.empty():
            await work(queue.get_nowait())

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    stream.ended = time.monotonic()


async def twice_out_of_order(client: Client, stream: Stream, in_flight: int = 32) -> None:
    """Razorpay's three webhooks of each payment (authorized, captured, order.paid), each
    delivered twice under its one event id, all shuffled and posted by concurrent senders."""
    await drive(stream, lambda p: client.create(p, stream), in_flight)
    deliveries = []
    for payment in stream.payments:
        for event in ("payment.authorized", "payment.captured", "order.paid"):
            body = client.webhook(payment, event)
            event_id = f"evt_{payment.order}_{event}"
            deliveries += [(body, event_id), (body, event_id)]
    random.shuffle(deliveries)
    pending = iter(deliveries)

    async def sender() -> None:
        for body, event_id in pending:
            await client.deliver(body, event_id, stream)

    await asyncio.gather(*(sender() for _ in range(in_flight)))
    stream.captured = len(stream.payments)
    stream.ended = time.monotonic()


# --------------------------------------------------------------------------- effects ----


@dataclass
class Effects:
    """How many times each effect landed, per payment order."""

    counts: dict[str, Counter[str]]

    def lost(self, stream: Stream) -> int:
        return sum(1 for e in EFFECTS for p in stream.payments if self.counts[e][p.order] == 0)

    def duplicates(self, stream: Stream) -> int:
        orders = stream.by_order
        return sum(
            n - 1 for e in EFFECTS for o, n in self.counts[e].items() if o in orders and n > 1
        )

    def most(self, stream: Stream) -> int:
        """The most times one payment's effect landed (2: sent twice)."""
        orders = stream.by_order
        return max(
            (n for e in EFFECTS for o, n in self.counts[e].items() if o in orders), default=0
        )

    def per_effect(self, stream: Stream) -> dict[str, int]:
        orders = stream.by_order
        return {e: sum(n for o, n in self.counts[e].items() if o in orders) for e in EFFECTS}


async def effects(database_url: str, providers: Providers, stream: Stream) -> Effects:
    orders = stream.by_order
    by_payment = {p.payment_id: p.order for p in stream.payments if p.payment_id}
    conn = await asyncpg.connect(database_url, user="postgres")
    try:
        rows = await conn.fetch(
            "SELECT payment_id, count(*) AS n FROM wallet.entries "
            "WHERE kind = 'cashback' AND payment_id = ANY($1) GROUP BY payment_id",
            list(by_payment),
        )
    finally:
        await conn.close()
    wallet = Counter({by_payment[r["payment_id"]]: r["n"] for r in rows})
    email: Counter[str] = Counter()
    for mail in providers.sendgrid.sent:
        if mail.template_id == ORDER_TEMPLATE:
            for person in mail.personalizations:
                order = person.get("dynamic_template_data", {}).get("order_number")
                if order in orders:
                    email[order] += 1
    push: Counter[str] = Counter()
    for delivery in providers.fcm.delivered:
        data = delivery.message.get("data", {})
        if data.get("type") == "payment_success" and data.get("orderId") in orders:
            push[data["orderId"]] += 1
    return Effects({"wallet": wallet, "email": email, "push": push})


async def undelivered_outbox_rows(database_url: str) -> int:
    conn = await asyncpg.connect(database_url, user="postgres")
    try:
        schemas = await conn.fetch(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'"
        )
        total = 0
        for row in schemas:
            schema = row["table_schema"]
            total += await conn.fetchval(
                f'SELECT count(*) FROM "{schema}".outbox WHERE sent_at IS NULL'  # noqa: S608
            )
        return int(total)
    finally:
        await conn.close()


def queue_depths(vhost: str, nodes: tuple[str, ...] = ()) -> dict[str, int]:
    """Every queue of the vhost with its messages, ready and unacknowledged; asked of the first
    of `nodes` (a cluster's) that answers, or of the local default node."""
    for node in nodes or (None,):
        on = ["-n", node] if node else []
        done = subprocess.run(
            ["rabbitmqctl", "-q", *on, "list_queues", "-p", vhost, "name", "messages",
             "--no-table-headers"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )  # fmt: skip
        if done.returncode == 0:
            break
    done.check_returncode()
    listed = done.stdout
    depths = {}
    for line in listed.splitlines():
        name, _, count = line.rpartition("\t")
        if name and count.isdigit():
            depths[name] = int(count)
    return depths


def in_flight(depths: Mapping[str, int]) -> int:
    """Messages still to be handled: everything but the dead letters and unrouted events."""
    return sum(n for q, n in depths.items() if not q.endswith(".dlq") and q != "rtmn.unrouted")


# -------------------------------------------------------------------------- the table ----


@dataclass
class Outcome:
    fault: str
    events_in: int
    per_effect: dict[str, int]
    duplicates: int
    lost: int
    drain_seconds: float | None
    note: str = ""
    most: int = 0  # the most times one payment's effect landed

    def row(self) -> tuple[str, ...]:
        effects_out = sum(self.per_effect.values())
        detail = "/".join(str(self.per_effect[e]) for e in EFFECTS)
        drain = "never" if self.drain_seconds is None else f"{self.drain_seconds:.1f} s"
        return (
            self.fault,
            str(self.events_in),
            f"{effects_out} ({detail})",
            str(self.duplicates),
            str(self.lost),
            drain,
            self.note,
        )


HEADER = (
    "fault",
    "events in",
    "effects out (wallet/email/push)",
    "duplicates",
    "lost",
    "time to drain",
    "notes",
)
RESULTS: list[Outcome] = []


def render(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def retries(stream: Stream) -> str:
    return ", ".join(f"{k} ×{n}" for k, n in itertools.islice(stream.retried.most_common(), 3))


# ------------------------------------------------------------- a private PostgreSQL ----


@dataclass(frozen=True)
class Cluster:
    """A throwaway PostgreSQL cluster of the machine's own installation (Debian's
    postgresql-common), so restarting it breaks nobody else's connections."""

    version: str
    name: str
    port: int

    @classmethod
    def create(cls, name: str) -> Cluster:
        listed = subprocess.run(
            ["pg_lsclusters", "-h"], check=True, capture_output=True, text=True, timeout=30
        ).stdout.split()
        if not listed:
            raise RuntimeError("pg_lsclusters shows no cluster: which PostgreSQL is installed?")
        cluster = cls(listed[0], name, free_port())
        # Trust on loopback as on the machine's main cluster; room for every process's pool.
        cluster._ctl(
            "pg_createcluster",
            cluster.version,
            cluster.name,
            "-p",
            str(cluster.port),
            "--start",
            "-o",
            "max_connections=300",
            "--",
            "--auth=trust",
        )
        return cluster

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://127.0.0.1:{self.port}/{database}"

    def restart(self) -> None:
        self._ctl("pg_ctlcluster", "-m", "fast", self.version, self.name, "restart")

    def drop(self) -> None:
        self._ctl("pg_dropcluster", "--stop", self.version, self.name)

    @staticmethod
    def _ctl(*argv: str) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stdout}{done.stderr}")


@dataclass
class Harness:
    suite: Suite
    vhost: str
    amqp_url: str
    database_url: str
    providers: Providers
    processes: Supervisor
    users: list[User]
    client: Client
    cluster: Cluster | None = None
    broker_nodes: tuple[str, ...] = ()  # a RabbitMQ cluster's (tests/cluster); () the local node
