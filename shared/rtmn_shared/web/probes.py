"""The probes of the relay and consumer roles: what makes each ready, and the small server that a
process without the API serves them from on its metrics port.

That server runs on the process's event loop, so a loop that is stuck (a handler computing, a
blocking call, a stopped process) cannot answer /healthz and the kubelet's timeout fails the
probe. It has no middleware: it is asked every few seconds and must cost next to nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack

from aiohttp import web

from rtmn_shared.events.consumer import ConsumerRunner
from rtmn_shared.events.relay import OutboxRelay
from rtmn_shared.web.app import READINESS, Readiness, healthz, metrics, readyz

Check = Callable[[], Awaitable[object]]


class NotStarted(Exception):
    """The role has not yet built what it runs on."""


class NotConsuming(Exception):
    """The consumers' connection, or a group's channel, is not open and consuming."""


class BrokerDisconnected(Exception):
    pass


class NoDatabaseSession(Exception):
    """The relay neither holds its lock nor stands by for it on an open session."""


class RoleProbes:
    """The readiness of the relay and the consumers running in this process, by role: the API's
    /readyz reports them beside its own checks, a worker's probe server reports only them."""

    def __init__(self, roles: Sequence[str]) -> None:
        self.roles = tuple(roles)
        self._checks: dict[str, Check] = {}

    def register(self, role: str, check: Check) -> None:
        self._checks[role] = check

    def checks(self) -> dict[str, Check]:
        """A check per role, which fails until the role has registered its own."""
        return {role: self._deferred(role) for role in self.roles}

    def _deferred(self, role: str) -> Check:
        async def check() -> object:
            registered = self._checks.get(role)
            if registered is None:
                raise NotStarted(role)
            return await registered()

        return check


def consumers_ready(runner: ConsumerRunner) -> Check:
    async def check() -> None:
        if not runner.ready.is_set():
            raise NotConsuming

    return check


def relay_ready(relay: OutboxRelay) -> Check:
    async def check() -> None:
        if not relay.broker_connected:
            raise BrokerDisconnected
        if not relay.session_alive:
            raise NoDatabaseSession

    return check


async def serve_probes(readiness: Readiness, host: str, port: int, stack: AsyncExitStack) -> None:
    """/healthz, /readyz and /metrics on `port` until the stack closes."""
    app = web.Application()
    app[READINESS] = readiness
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, host, port).start()
