"""The outbox relay: publishes committed events with confirms and marks them sent afterwards.

At-least-once by construction: a crash between the broker's confirm and the mark re-publishes
the row, and the consumers' inboxes absorb the duplicate. One relay per schema holds an advisory
lock so replicas never interleave a subject's events.

The mark rides on the next cycle's read (one statement marks what was confirmed and reads what
is pending), so a cycle is one round trip, not two; an idle relay's next poll (a second at most)
or its close marks the last batch. A crash before that re-publishes it, as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aio_pika
import aiormq
import asyncpg
from aio_pika.abc import AbstractConnection

from rtmn_shared import tracing
from rtmn_shared.db import FAILURES, Pool
from rtmn_shared.dedupe import DEFAULT_WINDOW, DedupeWindow
from rtmn_shared.events import brokers
from rtmn_shared.events.publishers import login_of
from rtmn_shared.events.topology import declare_exchange, event_message
from rtmn_shared.events.wakeup import IN_PROCESS, LocalRelays, channel_of
from rtmn_shared.metrics import EVENTS_PUBLISHED, OUTBOX_LAG, OUTBOX_PENDING
from rtmn_shared.partitions import keep_partitions
from rtmn_shared.resilience import Backoff
from rtmn_shared.suite import EXCHANGE

log = logging.getLogger(__name__)

# Marks the rows confirmed since the last read ($2) and reads what is still pending, without
# them: the read's snapshot does not see the CTE's marks.
_MARK_AND_READ = """
    WITH marked AS (UPDATE outbox SET sent_at = now() WHERE id = ANY($2::bigint[]))
    SELECT id, event_id, type, payload::text AS payload, created_at
    FROM outbox WHERE sent_at IS NULL AND NOT id = ANY($2::bigint[]) ORDER BY id LIMIT $1
"""


@dataclass(frozen=True)
class Row:
    id: int
    event_id: str
    type: str
    payload: bytes


class OutboxRelay:
    def __init__(
        self,
        *,
        service: str,
        pool: Pool,
        connect_db: Callable[[], Awaitable[asyncpg.Connection[asyncpg.Record]]],
        amqp_url: str,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        publish_timeout: float = 10.0,
        retention_hours: int = 24,
        local: LocalRelays = IN_PROCESS,
        window: DedupeWindow = DEFAULT_WINDOW,
    ) -> None:
        self.service = service
        self.pool = pool
        self.connect_db = connect_db
        self._listen: asyncpg.Connection[asyncpg.Record] | None = None
        self._standby: asyncpg.Connection[asyncpg.Record] | None = None
        self.amqp_url = amqp_url
        self._login = login_of(amqp_url)  # every publish names it; the broker checks it
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.publish_timeout = publish_timeout
        self.retention_hours = retention_hours
        # The schema's dedupe tables are kept here too: one leader per schema, already periodic.
        self.window = window
        self._wake = asyncio.Event()
        self._local = local  # where this process's writers find this relay while it leads
        self._amqp: AbstractConnection | None = None
        self._channel: aiormq.Channel | None = None
        self._confirmed: list[int] = []  # published and confirmed, to be marked sent

    async def run(self) -> None:
        """Runs until cancelled; any outage is waited out, never given up on."""
        backoff = Backoff()
        purge_every, iterations = 1000, 0
        try:
            while True:
                try:
                    # Connected even while idle or standing by, so readiness tells the truth.
                    await self._connect()
                    await self._hold_leadership()
                    published = await self.relay_once()
                    iterations += 1
                    if iterations % purge_every == 1:  # at start (days may have passed) and after
                        await self._purge()
                    backoff.reset()
                except _OUTAGES as error:
                    await self._drop_broker()
                    if not isinstance(error, _BROKER_OUTAGES):
                        # No pooled or listening session that saw it fail is trusted again.
                        await self.pool.expire_connections()
                        await self._drop_listen()
                    delay = backoff.next()
                    log.warning("relay paused: %s; retrying in %.1fs", _describe(error), delay)
                    await asyncio.sleep(delay)
                    continue
                if published < self.batch_size:
                    await self._idle()
        finally:
            await self.close()

    @property
    def broker_connected(self) -> bool:
        return self._channel is not None and not self._channel.is_closed

    @property
    def session_alive(self) -> bool:
        """Holding the relay lock, or standing by for it, on a database session that is open."""
        session = self._listen or self._standby
        return session is not None and not session.is_closed()

    async def close(self) -> None:
        with contextlib.suppress(*_OUTAGES):
            await self.mark_sent()
        await self._drop_broker()
        await self._drop_listen()

    async def relay_once(self) -> int:
        rows = await self.fetch_pending()
        if not rows:
            OUTBOX_LAG.labels(self.service).set(0)
            OUTBOX_PENDING.labels(self.service).set(0)
            return 0
        sent = await self.publish(rows)
        self._confirmed = [row.id for row in sent]
        if len(sent) < len(rows):
            raise NotConfirmedError(f"{len(rows) - len(sent)} of {len(rows)} events not confirmed")
        return len(rows)

    async def fetch_pending(self) -> list[Row]:
        """Marks what the last cycle got confirmed, and reads what is pending."""
        records = await self.pool.fetch(_MARK_AND_READ, self.batch_size, self._confirmed)
        self._confirmed = []
        if records:
            lag = datetime.now(UTC) - records[0]["created_at"]
            OUTBOX_LAG.labels(self.service).set(max(0.0, lag.total_seconds()))
            OUTBOX_PENDING.labels(self.service).set(len(records))
        return [Row(r["id"], str(r["event_id"]), r["type"], r["payload"].encode()) for r in records]

    async def publish(self, rows: list[Row]) -> list[Row]:
        """Publishes the rows with their confirms in flight together.

        Returns the confirmed prefix: a row after a failure is published again next time even if
        it was confirmed, so no subject's events ever overtake each other.
        """
        channel = await self._connect()
        publishing = [
            asyncio.ensure_future(
                channel.basic_publish(
                    message.body,
                    exchange=EXCHANGE,
                    routing_key=row.type,
                    properties=message.properties,
                    mandatory=True,
                    wait=False,
                )
            )
            for row, message in ((row, _message(row, self._login)) for row in rows)
        ]
        if tracing.spans is not None:
            for row, task in zip(rows, publishing, strict=True):
                tracing.spans.sending(row.type, row.event_id, row.payload, task)
        done, late = await asyncio.wait(publishing, timeout=self.publish_timeout)
        for task in late:
            task.cancel()
        failed = {task for task in done if task.cancelled() or task.exception() is not None}
        confirmed = []
        for row, task in zip(rows, publishing, strict=True):
            if task in late or task in failed:
                break
            confirmed.append(row)
        for row in confirmed:
            EVENTS_PUBLISHED.labels(self.service, row.type).inc()
        return confirmed

    async def mark_sent(self) -> None:
        """Marks what the last cycle got confirmed, without reading anything."""
        if self._confirmed:
            await self.pool.execute(
                "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])", self._confirmed
            )
            self._confirmed = []

    async def _connect(self) -> aiormq.Channel:
        """aiormq's channel under aio-pika's: there a publish need not wait for its frame to reach
        the socket while holding the channel's lock (aio-pika's publish does), so a batch's frames
        go out together, and one deadline for the batch spares a timer per event."""
        if self._channel is None or self._channel.is_closed:
            await self._drop_broker()  # the broker may have closed only the channel
            try:
                self._amqp = await brokers.connect(self.amqp_url, timeout=5)
            except (OSError, TimeoutError) as error:
                # The broker's outage, not the database's: the lock and its session are kept.
                raise BrokerUnreachableError(_describe(error)) from error
            channel = await self._amqp.channel(publisher_confirms=True, on_return_raises=True)
            await declare_exchange(channel)
            underlay = await channel.get_underlay_channel()
            assert isinstance(underlay, aiormq.Channel)
            self._channel = underlay
            log.info("relay connected to the broker")
        return self._channel

    async def _drop_broker(self) -> None:
        connection, self._amqp, self._channel = self._amqp, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def _hold_leadership(self) -> None:
        """Keeps a session that holds the relay lock and LISTENs; rebuilt after a restart."""
        if self._listen is not None and not self._listen.is_closed():
            return
        await self._drop_listen()
        listen = await self.connect_db()
        key = f"rtmn.relay.{self.service}"
        try:
            stood_by = False
            while not await listen.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
                stood_by = True
                log.info("another relay holds the %s outbox; standing by", self.service)
                self._standby = listen
                await asyncio.sleep(self.poll_seconds * 5)
                await self._connect()  # a broker that came back finds the standby connected
            await listen.add_listener(channel_of(self.service), self._on_notify)
            if stood_by:
                log.info("took over the %s outbox", self.service)
        except BaseException:
            await listen.close()
            raise
        finally:
            self._standby = None
        self._listen = listen
        self._local.leading(self.service, self._on_notify)

    async def _drop_listen(self) -> None:
        self._local.stepped_down(self.service, self._on_notify)
        listen, self._listen = self._listen, None
        if listen is not None and not listen.is_closed():
            with contextlib.suppress(Exception):
                await listen.close()

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        self._wake.clear()

    async def _purge(self) -> None:
        await self.pool.execute(
            "DELETE FROM outbox WHERE sent_at < now() - make_interval(hours => $1)",
            self.retention_hours,
        )
        async with self.pool.acquire() as conn:
            await keep_partitions(conn, self.window)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()


class NotConfirmedError(Exception):
    pass


class BrokerUnreachableError(Exception):
    pass


_BROKER_OUTAGES = (NotConfirmedError, BrokerUnreachableError, aio_pika.exceptions.AMQPError)
_OUTAGES: tuple[type[Exception], ...] = (*_BROKER_OUTAGES, *FAILURES)


def _message(row: Row, login: str | None) -> aio_pika.Message:
    return event_message(row.payload, message_id=row.event_id, type=row.type, user_id=login)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
