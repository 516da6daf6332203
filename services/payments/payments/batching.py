"""Payment webhooks that arrive while others are being written go to the database together.

One read and one statement (`save_outcomes`) for the lot: concurrent webhooks share their round
trips and their commit, as PostgreSQL's group commit shares a flush. Nothing waits on a timer:
a webhook arriving while no batch is running goes at once, alone. Each one is still decided on
its own payment, written under that row's lock, and answered only after its commit.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from payments import outcome_store, store
from payments.outcome_store import Saved
from payments.store import Delivery
from payments.transitions import decide, noted
from payments.webhooks import PaymentCommand
from rtmn_shared.db import FAILURES
from rtmn_shared.events.wakeup import UnitOfWork

log = logging.getLogger(__name__)


@dataclass
class _Waiting:
    delivery: Delivery
    command: PaymentCommand
    result: asyncio.Future[Saved | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Batcher:
    def __init__(self, unit: UnitOfWork, *, lanes: int = 2, most: int = 100) -> None:
        self._unit = unit
        self._lanes = lanes  # batches written at once
        self._most = most
        self._waiting: list[_Waiting] = []
        self._running: set[asyncio.Task[None]] = set()

    async def apply(self, delivery: Delivery, command: PaymentCommand) -> Saved | None:
        """As `save_outcome` on the payment read without a lock; None: not one of our payments."""
        waiting = _Waiting(delivery, command)
        self._waiting.append(waiting)
        if len(self._running) < self._lanes:
            task = asyncio.create_task(self._drain())
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return await waiting.result

    async def close(self) -> None:
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _drain(self) -> None:
        while self._waiting:
            batch = self._take()
            try:
                await self._write(batch)
            except Exception as error:
                log.exception("a batch of %d webhooks failed", len(batch))
                for waiting in batch:
                    if not waiting.result.done():
                        waiting.result.set_exception(error)
            except BaseException:
                for waiting in batch:  # cancelled: its webhooks are not left waiting
                    waiting.result.cancel()
                raise

    def _take(self) -> list[_Waiting]:
        """The next batch: at most one webhook per payment and per delivery, the rest wait."""
        batch: list[_Waiting] = []
        later: list[_Waiting] = []
        orders: set[str] = set()
        events: set[tuple[str, str]] = set()
        for waiting in self._waiting:
            order = waiting.command.gateway_order_id
            event = (waiting.delivery.provider, waiting.delivery.event_id)
            if len(batch) < self._most and order not in orders and event not in events:
                batch.append(waiting)
                orders.add(order)
                events.add(event)
            else:
                later.append(waiting)
        self._waiting = later
        return batch

    async def _write(self, batch: list[_Waiting]) -> None:
        try:
            async with self._unit.pool.acquire() as conn:
                orders = [w.command.gateway_order_id for w in batch]
                found = {p.gateway_order_id: p for p in await store.by_gateway_orders(conn, orders)}
                ours = [w for w in batch if w.command.gateway_order_id in found]
                changes = [
                    decide(found[w.command.gateway_order_id], w.command.signal, w.delivery)
                    for w in ours
                ]
                saved = await outcome_store.save_outcomes(conn, changes) if changes else []
        except FAILURES as error:
            # Each is tried again alone, under its row lock: one bad row fails only itself.
            log.warning("a batch of %d webhooks failed: %s", len(batch), type(error).__name__)
            _answer(batch, Saved.STALE)
            return
        results = dict(zip(map(id, ours), map(noted, changes, saved), strict=True))
        for waiting in batch:
            _answer([waiting], results.get(id(waiting)))
        if Saved.APPLIED in saved:
            self._unit.wake()


def _answer(batch: list[_Waiting], saved: Saved | None) -> None:
    for waiting in batch:
        if not waiting.result.done():  # its request may have gone meanwhile
            waiting.result.set_result(saved)
