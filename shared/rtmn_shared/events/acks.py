"""A channel's acknowledgements, sent together instead of one frame and one future each.

Deliveries settle in any order (a slow provider call holds one while later ones finish). What
settled since the last flush goes out on the next turn of the loop: the settled prefix of the
channel's deliveries as one `multiple` ack, anything settled past a delivery still in work as an
ack of its own. Nothing waits for the frames to reach the socket: a lost ack only means the
broker delivers again, which the inbox (or the handler's own record) turns into a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import aiormq

log = logging.getLogger(__name__)


class Acks:
    def __init__(self, channel: aiormq.abc.AbstractChannel) -> None:
        self.channel = channel
        self._delivered: deque[int] = deque()  # tags in delivery order, not yet acked
        self._settled: set[int] = set()  # to ack at the next flush
        self._gone: set[int] = set()  # acked or rejected on their own, still in _delivered
        self._in_order = True
        self._flushing = False
        self._sending: set[asyncio.Task[None]] = set()

    def delivered(self, tag: int) -> None:
        """Called as each delivery arrives, in the order the broker sent them."""
        if not self._in_order:
            return
        if self._delivered and tag < self._delivered[-1]:
            # Never expected (tags rise per channel); a `multiple` ack could then cover a
            # delivery still in work, so this channel acks one by one from here on.
            self._in_order = False
            self._delivered.clear()
            self._gone.clear()
            return
        self._delivered.append(tag)

    def ack(self, tag: int) -> None:
        self._settled.add(tag)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def reject(self, tag: int, *, requeue: bool) -> None:
        """Sent at once: the delivery goes back to the queue (or away) before anything else."""
        if self._in_order:
            self._gone.add(tag)
        await self.channel.basic_nack(tag, requeue=requeue, wait=False)

    def _flush(self) -> None:
        self._flushing = False
        frames: list[tuple[int, bool]] = []
        if self._in_order:
            last = None
            while self._delivered and (
                self._delivered[0] in self._settled or self._delivered[0] in self._gone
            ):
                tag = self._delivered.popleft()
                if tag in self._settled:
                    last = tag
                self._settled.discard(tag)
                self._gone.discard(tag)
            if last is not None:
                frames.append((last, True))
        for tag in self._settled:
            frames.append((tag, False))
            if self._in_order:
                self._gone.add(tag)
        self._settled.clear()
        if frames:
            task = asyncio.ensure_future(self._send(frames))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, frames: list[tuple[int, bool]]) -> None:
        try:
            for tag, multiple in frames:
                await self.channel.basic_ack(tag, multiple=multiple, wait=False)
        except (aiormq.exceptions.AMQPError, RuntimeError, ConnectionError) as error:
            # Its channel closed after the work was done: the broker hands the deliveries over
            # again, and the inbox (or the handler's own record) makes the second time a no-op.
            log.info("could not ack (%s); redelivery will follow", type(error).__name__)
