"""What the cluster tests and their conftest share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from itertools import cycle
from pathlib import Path
from typing import Any

import aiohttp

from rtmn_shared.testing.processes import procfile

PROCFILE = Path(__file__).parent / "Procfile.twice"
SPECS = procfile(PROCFILE)
# fault label -> seconds from the fault until its stand-in served (the table's extra column)
TAKEOVER: dict[str, float] = {}
# The gateway limits creates to 30 a minute per client address (burst 10), as deployed: the
# payments come from many clients, each on a loopback address of its own.
CLIENT_ADDRESSES = [f"127.0.1.{n}" for n in range(1, 101)]


class ManyClients:
    """Posts as aiohttp's session does, each request from the next client address in turn."""

    def __init__(self, sessions: list[aiohttp.ClientSession]) -> None:
        self.sessions = sessions
        self._next: Iterator[aiohttp.ClientSession] = cycle(sessions)

    def post(self, url: str, **kwargs: Any) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        return next(self._next).post(url, **kwargs)

    async def close(self) -> None:
        for session in self.sessions:
            await session.close()


@asynccontextmanager
async def many_clients() -> Any:
    clients = ManyClients(
        [
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=4, local_addr=(address, 0)),
                timeout=aiohttp.ClientTimeout(total=10),
            )
            for address in CLIENT_ADDRESSES
        ]
    )
    try:
        yield clients
    finally:
        await clients.close()
