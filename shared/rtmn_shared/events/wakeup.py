"""Waking the relay after a commit that wrote outbox rows, not inside it.

A NOTIFY inside the transaction serialises commits cluster-wide (see migration shared/0002).
Here one connection per process sends it after the commit, with asynchronous commit (a lost
wake-up costs only the relay's next poll), and any number of commits in the meantime share one
NOTIFY. The idea and the measurement came from the payments service. Where the relay that
holds the schema's lock runs in this very process (`python -m <service> api relay consumers`,
as `make run` starts each service), the commit wakes it directly and no NOTIFY is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from rtmn_shared.db import FAILURES, Connection, Pool
from rtmn_shared.resilience import Backoff

log = logging.getLogger(__name__)


def channel_of(schema: str) -> str:
    return f"rtmn_outbox_{schema}"


class LocalRelays:
    """The relays of this process that hold their schema's lock, by schema."""

    def __init__(self) -> None:
        self._wake: dict[str, Callable[[], None]] = {}

    def leading(self, schema: str, wake: Callable[[], None]) -> None:
        self._wake[schema] = wake

    def stepped_down(self, schema: str, wake: Callable[[], None]) -> None:
        if self._wake.get(schema) == wake:
            del self._wake[schema]

    def wake(self, schema: str) -> bool:
        """Wakes the schema's relay if it runs here; whether it did."""
        wake = self._wake.get(schema)
        if wake is None:
            return False
        wake()
        return True


# One per process, as there is one leading relay per schema: the relay and the writers of its
# schema meet here without either knowing how the process was composed.
IN_PROCESS = LocalRelays()


class RelayWakeup:
    def __init__(
        self,
        connect: Callable[[], Awaitable[Connection]],
        schema: str,
        local: LocalRelays = IN_PROCESS,
    ) -> None:
        self._connect = connect
        self._schema = schema
        self._channel = channel_of(schema)
        self._local = local
        self._pending = asyncio.Event()

    def poke(self) -> None:
        if not self._local.wake(self._schema):
            self._pending.set()

    async def run(self) -> None:
        conn: Connection | None = None
        backoff = Backoff()
        try:
            while True:
                await self._pending.wait()
                self._pending.clear()
                try:
                    if conn is None or conn.is_closed():
                        conn = await self._connect()
                        await conn.execute("SET synchronous_commit TO off")
                    await conn.execute("SELECT pg_notify($1, '')", self._channel)
                    backoff.reset()
                except FAILURES as error:
                    log.warning("could not wake the relay: %s", type(error).__name__)
                    if conn is not None:
                        conn.terminate()
                    conn = None
                    self._pending.set()
                    await asyncio.sleep(backoff.next())
        finally:
            if conn is not None and not conn.is_closed():
                await conn.close()


class UnitOfWork:
    """A transaction whose outbox rows the relay hears of as soon as it commits."""

    def __init__(self, pool: Pool, wake: Callable[[], None] = lambda: None) -> None:
        self.pool = pool
        self.wake = wake

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn
        self.wake()
