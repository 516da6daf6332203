"""The load generator's HTTP/1.1 client: one POST, one answer, as little work as that takes.

aiohttp's client costs this machine about 0.5 ms of CPU a request at the load's rates, as much
as the gateway that answers it; this one about a third of that, so that the generator takes
less of the two cores from the suite it measures. It speaks only what the gateway answers:
Content-Length or chunked bodies, keep-alive or close.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast


class ProtocolError(Exception):
    """The answer was not HTTP/1.1 as nginx writes it."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    keep_alive: bool


class _Connection(asyncio.Protocol):
    """One TCP connection; at most one request on it at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[Answer] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.answer is not None and not self.answer.done():
            try:
                parsed = _parse(self.buffer)
            except ProtocolError as error:
                self.answer.set_exception(error)
                return
            if parsed is not None:
                self.answer.set_result(parsed)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionResetError("the server closed the connection"))

    async def exchange(self, request: bytes) -> Answer:
        assert self.transport is not None
        self.buffer.clear()
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.answer

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _parse(buffer: bytearray) -> Answer | None:
    """The whole answer in the buffer, or None while it is still arriving."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    if not head[0].startswith("HTTP/1.1 "):
        raise ProtocolError(f"not an HTTP/1.1 answer: {head[0][:60]!r}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
    keep_alive = headers.get("connection", "").lower() != "close"
    start = end + 4
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunked(buffer, start)
    else:
        length = int(headers.get("content-length", "0"))
        body = bytes(buffer[start : start + length]) if len(buffer) >= start + length else None
    return None if body is None else Answer(int(head[0][9:12]), body, keep_alive)


def _unchunked(buffer: bytearray, at: int) -> bytes | None:
    body = bytearray()
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
        at = line_end + 2
        if size == 0:
            return bytes(body) if buffer.find(b"\r\n", at) >= 0 else None
        if len(buffer) < at + size + 2:
            return None
        body += buffer[at : at + size]
        at += size + 2


class Client:
    """POSTs to one server: from a fresh connection (a new client's first request, closed
    after its answer), or on a kept-alive one from a pool (a provider posting webhooks)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._idle: list[_Connection] = []

    async def post(
        self,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        from_address: str | None = None,
    ) -> Answer:
        """From `from_address` on a fresh connection; otherwise on a pooled one."""
        fresh = from_address is not None
        request = self._request(path, body, headers, close=fresh)
        connection = None if fresh else self._pooled()
        try:
            async with asyncio.timeout(self.timeout):
                if connection is None:
                    connection = await self._connect(from_address)
                answer = await connection.exchange(request)
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        if fresh or not answer.keep_alive or connection.closed:
            connection.close()
        else:
            self._idle.append(connection)
        return answer

    def _pooled(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:  # nginx closes what stayed idle past its keepalive_timeout
                return connection
        return None

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def _connect(self, from_address: str | None) -> _Connection:
        local = None if from_address is None else (from_address, 0)
        _, connection = await asyncio.get_running_loop().create_connection(
            _Connection, self.host, self.port, local_addr=local
        )
        return connection

    def _request(self, path: str, body: bytes, headers: Mapping[str, str], close: bool) -> bytes:
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        if close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
