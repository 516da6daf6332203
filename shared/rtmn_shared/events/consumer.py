"""The consumer runner: idempotent, at-least-once handling with delayed retries and a DLQ.

Each handler is one consumer group with its own quorum queue `<service>.<handler>`. A delivery
is applied and recorded in the service's inbox in one transaction, then acknowledged; a
redelivered event finds its inbox row and does nothing.

Deliveries that are already waiting when a worker comes free are applied together, in one
transaction with one inbox insert: under load this saves three round trips of four per event,
and costs nothing when idle (a lone delivery is a batch of one). A batch that fails for any
reason is rolled back and its deliveries applied one at a time, so a failing handler only ever
retries or dead-letters its own message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from aiormq.abc import DeliveredMessage
from pydantic import ValidationError
from typing_extensions import TypeVar

from rtmn_shared import tracing
from rtmn_shared.db import Connection, Pool
from rtmn_shared.events import brokers
from rtmn_shared.events.acks import Acks
from rtmn_shared.events.catalogue import CATALOGUE, PRODUCED_BY
from rtmn_shared.events.envelope import CloudEvent, EventData
from rtmn_shared.events.inbox import DEFAULT_INBOX, Inbox
from rtmn_shared.events.outcomes import GiveUp, Retry
from rtmn_shared.events.publishers import (
    PRODUCER_HEADER,
    Logins,
    Publishers,
    first_hand,
    login_of,
)
from rtmn_shared.events.topology import QueueNames, declare_consumer_queues, declare_exchange
from rtmn_shared.logs import event_id_var, redact_url
from rtmn_shared.metrics import CONSUMED_OUTCOMES, EVENTS_CONSUMED, EVENTS_REFUSED
from rtmn_shared.resilience import Backoff
from rtmn_shared.tracing import continue_trace, current_traceparent

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-rtmn-attempt"
ERROR_HEADER = "x-rtmn-last-error"
QUEUE_HEADER = "x-rtmn-queue"
DEFAULT_RETRY_DELAYS_MS = (1_000, 5_000, 30_000, 120_000)
SHUTDOWN_GRACE_S = 10.0
CLOSE_SECONDS = 5.0  # for the broker to answer a connection close


# The event model a handler declared; a bare Handler or Delivery takes any event.
E = TypeVar("E", bound=EventData, default=Any)
E_co = TypeVar("E_co", bound=EventData, default=Any, covariant=True)


@dataclass(frozen=True)
class Delivery(Generic[E_co]):
    """What a handler receives: the event, its data as the model the handler declared, and the
    transaction to work in."""

    event: CloudEvent
    data: E_co
    attempt: int
    conn: Connection | None
    # The message's AMQP headers, with what a Retry(headers=...) of an earlier attempt added.
    headers: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Handler(Generic[E]):
    """A consumer group: `apply` receives each event of `events` typed as the model declared
    (`Handler("credit", (PaymentSuccess,), credit)` with `credit(d: Delivery[PaymentSuccess])`);
    `parse` has already refused any other."""

    name: str
    events: tuple[type[E], ...]
    apply: Callable[[Delivery[E]], Awaitable[None]]
    # With inbox=False the handler keeps its own idempotency record (e.g. a delivery log) and
    # gets no transaction: it may call slow providers without holding a database connection.
    inbox: bool = True
    retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS
    prefetch: int | None = None
    routing_keys: tuple[str, ...] = field(default=())
    # How many waiting deliveries one transaction may apply; 1 applies each on its own.
    batch_size: int = 32

    def keys(self) -> tuple[str, ...]:
        return self.routing_keys or tuple(model.type for model in self.events)


@dataclass(frozen=True)
class _Received:
    message: DeliveredMessage
    headers: dict[str, Any]
    attempt: int
    event: CloudEvent
    data: EventData


@dataclass(frozen=True)
class _Group:
    """One consumer group on its channel: aio-pika's for declaring and moving messages, its
    aiormq underlay for consuming and acking without a future per message."""

    names: QueueNames
    handler: Handler
    channel: AbstractChannel
    acks: Acks


class ConsumerRunner:
    def __init__(
        self,
        *,
        service: str,
        pool: Pool | None,
        amqp_url: str,
        handlers: Sequence[Handler],
        prefetch: int = 64,
        batch_workers: int = 2,
        after_commit: Callable[[], None] = lambda: None,
        inbox: Inbox = DEFAULT_INBOX,
        logins: Logins = Logins(),  # noqa: B008 - frozen
        publishers: Publishers | None = None,
    ) -> None:
        self.service = service
        self.pool = pool
        self.amqp_url = amqp_url
        # Moves to the retry queues and the DLQ are published under this group's own login.
        self.login = login_of(amqp_url)
        self.publishers = publishers or Publishers(logins, self.login, PRODUCED_BY)
        self.handlers = handlers
        self.prefetch = prefetch
        # Transactions in flight per batching group; each holds a pooled connection while it runs.
        self.batch_workers = batch_workers
        # Called once a handler's work committed, so the events it wrote leave at once.
        self.after_commit = after_commit
        self.inbox = inbox
        self.ready = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        # Every outcome of every queue is exported from the start, at 0: increase() and rate()
        # then see the first retry or dead letter (a series born at 1 has nothing to grow
        # from), and the dashboard shows 0 dead letters rather than no data.
        for handler in handlers:
            for outcome in CONSUMED_OUTCOMES:
                EVENTS_CONSUMED.labels(self.queue_names(handler).main, outcome)

    def queue_names(self, handler: Handler) -> QueueNames:
        return QueueNames(f"{self.service}.{handler.name}")

    async def run(self) -> None:
        """Consumes until cancelled, reconnecting after every broker outage; on the way out,
        handlers already running get a moment to finish."""
        try:
            await self._consume()
        finally:
            if self._in_flight:
                _, stuck = await asyncio.wait(self._in_flight, timeout=SHUTDOWN_GRACE_S)
                for task in stuck:
                    task.cancel()

    async def _consume(self) -> None:
        backoff = Backoff()
        while True:
            connection: AbstractConnection | None = None
            try:
                connection = await brokers.connect(self.amqp_url, timeout=5)
                closed = asyncio.Event()
                connection.close_callbacks.add(_setter(closed))
                for handler in self.handlers:
                    await self._start(connection, handler, closed)
                log.info("consuming %s", ", ".join(self.queue_names(h).main for h in self.handlers))
                self.ready.set()
                backoff.reset()
                await closed.wait()
                log.warning("broker connection or channel lost; reconnecting")
            except (aio_pika.exceptions.AMQPError, OSError, TimeoutError) as error:
                delay = backoff.next()
                log.warning(
                    "broker unreachable at %s (%s); retrying in %.1fs",
                    redact_url(self.amqp_url),
                    type(error).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
            finally:
                self.ready.clear()
                await self._stop_workers()
                if connection is not None:
                    with contextlib.suppress(Exception):  # bounded: a dead peer never answers
                        await asyncio.wait_for(connection.close(), CLOSE_SECONDS)

    async def _start(
        self, connection: AbstractConnection, handler: Handler, lost: asyncio.Event
    ) -> None:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        # A channel the broker closes (e.g. its consumer timeout) would stop this group silently.
        channel.close_callbacks.add(_setter(lost))
        await channel.set_qos(prefetch_count=handler.prefetch or self.prefetch)
        exchange = await declare_exchange(channel)
        names = self.queue_names(handler)
        await declare_consumer_queues(
            channel, exchange, names, handler.keys(), handler.retry_delays_ms
        )
        underlay = await channel.get_underlay_channel()
        group = _Group(names, handler, channel, Acks(underlay))
        if self._batches(handler):
            consume = self._in_batches(group, lost)
        else:
            consume = self._one_by_one(group)
        await underlay.basic_consume(names.main, consume)

    def _one_by_one(self, group: _Group) -> Callable[[DeliveredMessage], Coroutine[Any, Any, None]]:
        async def on_message(message: DeliveredMessage) -> None:
            group.acks.delivered(_tag(message))
            # aiormq cancels a closed channel's consumer tasks. A handler may be past a
            # provider's accept, with only its record left to write: it runs on in a task of
            # ours, and only its ack is lost (the redelivery finds the record).
            self._detached(self.handle(group, message))

        return on_message

    def _in_batches(
        self, group: _Group, lost: asyncio.Event
    ) -> Callable[[DeliveredMessage], Coroutine[Any, Any, None]]:
        waiting: asyncio.Queue[DeliveredMessage] = asyncio.Queue()
        batch_size = group.handler.batch_size

        async def work() -> None:
            while True:
                batch = [await waiting.get()]
                while len(batch) < batch_size and not waiting.empty():
                    batch.append(waiting.get_nowait())
                try:
                    await self.handle_batch(group, batch)
                except Exception:
                    # Unacked deliveries come back on a new channel; a dead worker would not.
                    log.warning("a %s worker failed; reconnecting", group.names.main, exc_info=True)
                    lost.set()
                    return

        self._workers += [asyncio.ensure_future(work()) for _ in range(self.batch_workers)]

        async def enqueue(message: DeliveredMessage) -> None:
            group.acks.delivered(_tag(message))
            waiting.put_nowait(message)

        return enqueue

    def _detached(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return task

    def _batches(self, handler: Handler) -> bool:
        return handler.inbox and handler.batch_size > 1 and self.pool is not None

    async def _stop_workers(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()

    async def handle(self, group: _Group, message: DeliveredMessage) -> None:
        received = await self._receive(group, message)
        if received is not None:
            await self._settle(group, received)

    async def handle_batch(self, group: _Group, messages: Sequence[DeliveredMessage]) -> None:
        batch = [r for m in messages if (r := await self._receive(group, m)) is not None]
        if len(batch) > 1:
            try:
                outcomes = await self._apply_batch(group, batch)
            except Exception as error:
                log.info(
                    "a batch of %d for %s was rolled back (%s); applying one at a time",
                    len(batch),
                    group.names.main,
                    _describe(error),
                )
            else:
                self.after_commit()
                for received, outcome in zip(batch, outcomes, strict=True):
                    EVENTS_CONSUMED.labels(group.names.main, outcome).inc()
                    group.acks.ack(_tag(received.message))
                return
        for received in batch:
            await self._settle(group, received)

    async def _receive(self, group: _Group, message: DeliveredMessage) -> _Received | None:
        """The parsed delivery, or None once an unparseable one went to the DLQ."""
        headers: dict[str, Any] = dict(message.header.properties.headers or {})
        attempt = int(headers.get(ATTEMPT_HEADER, 1))
        try:
            event, data = parse(message.body)
        except GiveUp as error:
            await self._dead_letter(group, message, headers, attempt, error)
            return None
        refusal = self.publishers.refusal(event.type, message.header.properties.user_id, headers)
        if refusal is not None:
            EVENTS_REFUSED.labels(group.names.main, event.type).inc()
            await self._dead_letter(group, message, headers, attempt, GiveUp(refusal))
            return None
        if not isinstance(data, group.handler.events):  # its handler takes only what it declared
            refused = GiveUp(f"{event.type} is not an event {group.names.main} takes")
            await self._dead_letter(group, message, headers, attempt, refused)
            return None
        return _Received(message, headers, attempt, event, data)

    async def _settle(self, group: _Group, received: _Received) -> None:
        """Applies one delivery, then acks it, schedules its retry or dead-letters it."""
        message, headers, attempt = received.message, received.headers, received.attempt
        retry_delays_ms = group.handler.retry_delays_ms
        with _event_context(received.event, group.names.main):
            try:
                outcome = await self._apply(group, received)
            except GiveUp as error:
                await self._dead_letter(group, message, headers, attempt, error)
            except Exception as error:
                if not isinstance(error, Retry):
                    log.warning("handler %s failed", group.names.main, exc_info=True)
                if attempt > len(retry_delays_ms):
                    await self._dead_letter(group, message, headers, attempt, error)
                else:
                    await self._retry_later(group, message, headers, attempt, error)
            else:
                self.after_commit()
                EVENTS_CONSUMED.labels(group.names.main, outcome).inc()
                group.acks.ack(_tag(message))

    async def _apply(self, group: _Group, received: _Received) -> str:
        handler = group.handler
        if not handler.inbox or self.pool is None:
            await handler.apply(_delivery(received, None))
            return "applied"
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await self.inbox.record(conn, group.names.main, received.event)
            if not fresh:
                return "duplicate"
            await handler.apply(_delivery(received, conn))
            return "applied"

    async def _apply_batch(self, group: _Group, batch: Sequence[_Received]) -> list[str]:
        """Applies every new event of the batch in one transaction; the outcome of each."""
        assert self.pool is not None
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await self.inbox.record_batch(conn, group.names.main, [r.event for r in batch])
            outcomes = []
            for received in batch:
                if received.event.id not in fresh:  # seen before, or twice in this batch
                    outcomes.append("duplicate")
                    continue
                fresh.discard(received.event.id)
                with _event_context(received.event, group.names.main):
                    await group.handler.apply(_delivery(received, conn))
                outcomes.append("applied")
            return outcomes

    async def _retry_later(
        self,
        group: _Group,
        message: DeliveredMessage,
        headers: dict[str, Any],
        attempt: int,
        error: BaseException,
    ) -> None:
        delay = group.handler.retry_delays_ms[attempt - 1]
        log.info(
            "retrying %s in %d ms (attempt %d): %s",
            group.names.main,
            delay,
            attempt + 1,
            _describe(error),
        )
        queue = group.names.retry(delay)
        await self._move(group, queue, message, headers, attempt + 1, error, "retried")

    async def _dead_letter(
        self,
        group: _Group,
        message: DeliveredMessage,
        headers: dict[str, Any],
        attempt: int,
        error: BaseException,
    ) -> None:
        log.error(
            "dead-lettering a message of %s after %d attempt(s): %s",
            group.names.main,
            attempt,
            _describe(error),
        )
        await self._move(group, group.names.dlq, message, headers, attempt, error, "dead_lettered")

    async def _move(
        self,
        group: _Group,
        queue: str,
        message: DeliveredMessage,
        headers: dict[str, Any],
        attempt: int,
        error: BaseException,
        outcome: str,
    ) -> None:
        """Publishes a copy (confirmed) before acking the original, so a crash never loses it."""
        headers = dict(headers)
        if isinstance(error, Retry):
            headers.update(error.headers)
        headers[ATTEMPT_HEADER] = attempt
        headers[ERROR_HEADER] = _describe(error)[:1000]
        headers[QUEUE_HEADER] = group.names.main
        properties = message.header.properties
        # The copy goes out under this group's login; who first published it travels along.
        copy = persistent_copy(
            message.body,
            headers,
            message_id=properties.message_id,
            type=properties.message_type,
            content_type=properties.content_type,
            user_id=self.login,
            producer=self.publishers.producer(properties.user_id, headers),
        )
        try:
            await group.channel.default_exchange.publish(
                copy, routing_key=queue, mandatory=True, timeout=10
            )
        except Exception:
            log.warning("could not move a message to %s; leaving it to be redelivered", queue)
            with contextlib.suppress(Exception):
                await group.acks.reject(_tag(message), requeue=True)
            return
        EVENTS_CONSUMED.labels(group.names.main, outcome).inc()
        if tracing.spans is not None:
            tracing.spans.failed(outcome, error)
        group.acks.ack(_tag(message))


def persistent_copy(
    body: bytes,
    headers: dict[str, Any],
    *,
    message_id: str | None,
    type: str | None,
    content_type: str | None,
    user_id: str | None,
    producer: str | None,
) -> aio_pika.Message:
    """A message as it came, with `headers`, to publish again (to a retry queue, the DLQ, or
    back from the DLQ) under the login `user_id`, naming `producer`, who first published it
    (PRODUCER_HEADER, left out when unknown; events/publishers.py)."""
    headers = {k: v for k, v in headers.items() if k != PRODUCER_HEADER}
    if producer is not None:
        headers[PRODUCER_HEADER] = producer
    return aio_pika.Message(
        body,
        headers=headers,
        message_id=message_id,
        type=type,
        content_type=content_type,
        user_id=user_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def copy_of(
    message: AbstractIncomingMessage,
    headers: dict[str, Any],
    *,
    login: str | None,
    relaying: frozenset[str],
) -> aio_pika.Message:
    """`persistent_copy` of a message taken with aio-pika (the DLQ tool, queue moves), published
    under `login` and naming who first published it, as a consumer's own moves do; a header
    from anyone but the `relaying` logins is not believed."""
    return persistent_copy(
        message.body,
        headers,
        message_id=message.message_id,
        type=message.type,
        content_type=message.content_type,
        user_id=login,
        producer=first_hand(message.user_id, headers, relaying),
    )


def _tag(message: DeliveredMessage) -> int:
    tag = message.delivery_tag
    assert tag is not None  # consumed with manual acks, every delivery has one
    return tag


def _setter(event: asyncio.Event) -> Callable[..., None]:
    return lambda *_: event.set()


def _delivery(received: _Received, conn: Connection | None) -> Delivery:
    return Delivery(received.event, received.data, received.attempt, conn, received.headers)


@contextlib.contextmanager
def _event_context(event: CloudEvent, queue: str) -> Iterator[None]:
    """Log lines name the event and continue its trace while it is handled; with traces
    exported, in a consumer span."""
    event_token = event_id_var.set(str(event.id))
    try:
        if tracing.spans is None:
            trace_token = current_traceparent.set(continue_trace(event.traceparent))
            try:
                yield
            finally:
                current_traceparent.reset(trace_token)
        else:
            with tracing.spans.processing(queue, event):
                yield
    finally:
        event_id_var.reset(event_token)


def parse(body: bytes) -> tuple[CloudEvent, EventData]:
    try:
        event = CloudEvent.model_validate_json(body)
    except ValidationError as error:
        raise GiveUp(f"not a CloudEvent: {error.error_count()} problem(s)") from None
    model = CATALOGUE.get(event.type)
    if model is None:
        raise GiveUp(f"unknown event type {event.type!r}")
    try:
        return event, model.model_validate(event.data)
    except ValidationError as error:
        raise GiveUp(f"bad {event.type} data: {_fields(error)}") from None


def _fields(error: ValidationError) -> str:
    return ", ".join(".".join(map(str, e["loc"])) or "data" for e in error.errors())


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
