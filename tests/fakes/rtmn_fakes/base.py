"""The machinery every fake shares: an aiohttp app on a free port, recording, faults, threads.

A fake runs either on the caller's event loop (`async with Fake() as fake`) or on a loop of
its own in a background thread (`with Fake() as fake` / `start_in_thread()`), which blocking
SDKs need: a sync client called from the loop that serves the fake would deadlock it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from types import TracebackType
from typing import Any, ClassVar, Self

from aiohttp import web

from rtmn_fakes.faults import Fault, FaultQueue, RequestFilter
from rtmn_fakes.recording import RecordedRequest, RequestLog, path_matcher
from rtmn_fakes.threads import LoopThread

RECORDED = web.RequestKey("rtmn_recorded", RecordedRequest)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DROPPED = 0  # RecordedRequest.status of a request whose connection was closed unanswered
MALFORMED_BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        headers=headers,
    )


class FakeServer:
    provider: ClassVar[str] = "fake"
    # Above every provider limit the fakes enforce, so the fake answers them, not aiohttp.
    client_max_size: ClassVar[int] = 64 * 1024 * 1024
    auto_decompress: ClassVar[bool] = True

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._log = RequestLog()
        self._faults = FaultQueue()
        # Guards provider state: handlers run on the server loop, control calls on the test's.
        self._lock = threading.RLock()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._thread: LoopThread | None = None
        self._closing = asyncio.Event()

    # -- what each provider's fake supplies -------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def fault_body(self, status: int) -> Any:
        """The body of an armed failure when the test gave none: the provider's error shape."""
        return {"error": {"code": status, "message": HTTPStatus(status).phrase}}

    def fault_response(self, fault: Fault) -> web.StreamResponse:
        body = self.fault_body(fault.status) if fault.body is None else fault.body
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        if isinstance(body, bytes | str):
            raw = body.encode() if isinstance(body, str) else body
            return web.Response(status=fault.status, body=raw, headers=headers)
        return json_response(body, fault.status, headers)

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        """The provider's answer to missing or wrong credentials, or None to go on."""
        return None

    def reset_state(self) -> None:
        """Forget provider state (orders, messages...); ids keep counting so none repeats."""

    # -- recording ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._url

    def keep_only(self, last: int) -> None:
        """Keep the last `last` requests only, from now on (before it serves a long run)."""
        self._log = RequestLog(keep=last)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._log.snapshot()

    def requests_to(self, path_suffix: str, method: str | None = None) -> list[RecordedRequest]:
        match = path_matcher(path_suffix, method)
        return [r for r in self._log.snapshot() if match(r)]

    def wait_for_requests(
        self,
        count: int = 1,
        path_suffix: str | None = None,
        *,
        method: str | None = None,
        where: RequestFilter | None = None,
        timeout: float = 5.0,
        answered: bool = True,
    ) -> list[RecordedRequest]:
        """Block until `count` matching requests have been answered (or, with `answered=False`,
        merely received); TimeoutError otherwise."""
        by_path = path_matcher(path_suffix, method)

        def match(request: RecordedRequest) -> bool:
            return by_path(request) and (where is None or where(request))

        return self._log.wait_for(match, count, timeout, answered=answered)

    async def wait_for_requests_async(
        self,
        count: int = 1,
        path_suffix: str | None = None,
        *,
        method: str | None = None,
        where: RequestFilter | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the wait runs in a worker thread
        answered: bool = True,
    ) -> list[RecordedRequest]:
        # A worker thread waits on the condition, so a fake on this same loop keeps serving.
        wait = functools.partial(
            self.wait_for_requests, method=method, where=where, timeout=timeout, answered=answered
        )
        return await asyncio.to_thread(wait, count, path_suffix)

    # -- faults -------------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        body: Any = None,
        retry_after: float | str | None = None,
        *,
        path: str | None = None,
        method: str | None = None,
        where: RequestFilter | None = None,
        skip: int = 0,
    ) -> None:
        """Answer `status` (with the provider's error body unless `body` is given) instead of
        carrying the request out; `skip` lets that many matching requests through first."""
        self._faults.arm(
            Fault("fail", n, path, method, where, status, body, retry_after=retry_after, skip=skip)
        )

    def delay_next(
        self,
        n: int,
        seconds: float,
        *,
        path: str | None = None,
        method: str | None = None,
        where: RequestFilter | None = None,
        skip: int = 0,
    ) -> None:
        """Answer late; the request is still carried out, as when a client times out for real."""
        self._faults.arm(Fault("delay", n, path, method, where, seconds=seconds, skip=skip))

    def drop_next(
        self,
        n: int = 1,
        *,
        path: str | None = None,
        method: str | None = None,
        where: RequestFilter | None = None,
        skip: int = 0,
        after_handling: bool = False,
    ) -> None:
        """Close the connection unanswered; `after_handling` carries the request out first."""
        fault = Fault("drop", n, path, method, where, after_handling=after_handling, skip=skip)
        self._faults.arm(fault)

    def malformed_next(
        self,
        n: int = 1,
        *,
        path: str | None = None,
        method: str | None = None,
        where: RequestFilter | None = None,
        skip: int = 0,
    ) -> None:
        """Answer 200 with an HTML page where the client expects JSON."""
        self._faults.arm(Fault("malformed", n, path, method, where, skip=skip))

    def reset(self) -> None:
        self._log.clear()
        self._faults.clear()
        with self._lock:
            self.reset_state()

    # -- serving ------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        recorded = await RecordedRequest.from_request(request)
        request[RECORDED] = recorded
        self._log.append(recorded)
        fault = self._faults.take(recorded)
        try:
            response = await self._answer(request, handler, fault)
        except web.HTTPException as exc:
            self._log.mark_answered(recorded, exc.status)
            raise
        dropped = fault is not None and fault.kind == "drop"
        self._log.mark_answered(recorded, DROPPED if dropped else response.status)
        return response

    async def _answer(
        self, request: web.Request, handler: Handler, fault: Fault | None
    ) -> web.StreamResponse:
        if fault is None:
            return await self._handle(request, handler)
        if fault.kind == "fail":
            return self.fault_response(fault)
        if fault.kind == "malformed":
            return web.Response(status=200, body=MALFORMED_BODY, content_type="text/html")
        if fault.kind == "delay":
            try:
                # Wakes early when the fake closes, so shutdown never waits on a delay.
                await asyncio.wait_for(self._closing.wait(), fault.seconds)
            except TimeoutError:
                return await self._handle(request, handler)
            return web.Response(status=503)
        if fault.after_handling:
            await self._handle(request, handler)
        if request.transport is not None:
            request.transport.abort()
        # The transport is gone: aiohttp discards this response unwritten.
        return web.Response(status=500)

    async def _handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        denied = self.authenticate(request)
        return denied if denied is not None else await handler(request)

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=self.client_max_size)
        app.add_routes(self.routes())
        return app

    async def start(self) -> Self:
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        runner = web.AppRunner(
            self._build_app(),
            access_log=None,
            shutdown_timeout=0.5,
            auto_decompress=self.auto_decompress,
        )
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            await runner.cleanup()
            raise
        await web.SockSite(runner, sock).start()
        self._runner = runner
        host, port = sock.getsockname()[:2]
        self._url = f"http://{host}:{port}"
        return self

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        self._url = None
        if runner is not None:
            self._closing.set()
            await runner.cleanup()
            self._closing = asyncio.Event()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def start_in_thread(self, timeout: float = 10.0) -> Self:
        """Serve from a loop of its own in a background thread, for blocking SDKs."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} is already running in a thread")
        self._thread = LoopThread.start(self.start, self.close, f"fake-{self.provider}", timeout)
        return self

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop()

    def __enter__(self) -> Self:
        return self.start_in_thread()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
