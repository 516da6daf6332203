"""One entry point per service: `python -m <service> ROLE [ROLE ...]`.

The roles are api, relay and consumers; several run in one process on one event loop (as
`make run` runs each service), where the relay hears of its own process's commits without a
NOTIFY. `worker` is the relay and the consumers; `all` is all three after migrating; `migrate`
only migrates. `python -m <service> secrets ...` keeps its credentials sealed in its schema
(cli/secrets.py).

What a service is and what its roles open live in service.py, below this module and the
`secrets` command alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import uvloop
from aiohttp import web

from rtmn_shared import db
from rtmn_shared.cli.secrets import main as secrets_main
from rtmn_shared.events.consumer import ConsumerRunner
from rtmn_shared.events.inbox import Inbox, check_window
from rtmn_shared.events.publishers import Logins
from rtmn_shared.events.relay import OutboxRelay
from rtmn_shared.logs import configure_logging
from rtmn_shared.migrations import MigrationError
from rtmn_shared.otel import configure_tracing
from rtmn_shared.service import (
    S,
    Service,
    load_service_settings,
    open_pool,
    open_unit_of_work,
    run_migrations,
)
from rtmn_shared.settings import CommonSettings, load_settings
from rtmn_shared.web.app import READINESS, Readiness
from rtmn_shared.web.probes import RoleProbes, consumers_ready, relay_ready, serve_probes

log = logging.getLogger(__name__)


async def migrate_or_exit(service: Service[Any], settings: CommonSettings) -> None:
    try:
        applied = await run_migrations(service, settings)
    except MigrationError as error:
        raise SystemExit(f"{service.name}: {error}") from None
    except (OSError, asyncpg.PostgresError) as error:
        raise SystemExit(
            f"{service.name}: cannot migrate: {type(error).__name__}: {error}"
        ) from None
    log.info("migrations applied: %s", ", ".join(applied) or "none new")


async def run_api(service: Service[S], settings: S, probes: RoleProbes) -> None:
    async with AsyncExitStack() as stack:
        app = await service.build_app(settings, stack)
        app[READINESS].extra.update(probes.checks())  # the relay and consumers beside it
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        port = settings.http_port or service.info.port
        await web.TCPSite(runner, settings.http_host, port, backlog=1024).start()
        log.info("%s API listening on %s:%d", service.name, settings.http_host, port)
        await asyncio.Event().wait()


async def serve_worker_probes(
    settings: CommonSettings, probes: RoleProbes, stack: AsyncExitStack
) -> None:
    """A process without the API serves /metrics, /healthz and /readyz on its metrics port."""
    if settings.metrics_port is not None:
        readiness = Readiness(extra=probes.checks())
        await serve_probes(readiness, settings.http_host, settings.metrics_port, stack)


def probed_roles(service: Service[Any], roles: Sequence[str]) -> list[str]:
    """The roles whose readiness the process reports: its relay, and its consumers if any."""
    has = {"relay": True, "consumers": service.build_handlers is not None}
    return [role for role in roles if has.get(role, False)]


async def run_relay(service: Service[S], settings: S, probes: RoleProbes) -> None:
    async with AsyncExitStack() as stack:
        # A "sent" mark a crash loses only publishes the event again, which consumers absorb.
        pool = await open_pool(service.info, settings, stack, durable_commits=False)
        relay = OutboxRelay(
            service=service.info.schema,
            pool=pool,
            connect_db=lambda: db.connect(service.info, settings),
            amqp_url=str(settings.amqp_url),
            window=settings.dedupe_window(),
        )
        probes.register("relay", relay_ready(relay))
        log.info("%s relay started", service.name)
        await relay.run()


async def run_consumers(service: Service[S], settings: S, probes: RoleProbes) -> None:
    if service.build_handlers is None:
        log.info("%s consumes no events", service.name)
        return
    async with AsyncExitStack() as stack:
        pool = await open_pool(service.info, settings, stack)
        handlers = await service.build_handlers(settings, stack)
        check_window(
            settings.dedupe_window(), {h.name: h.retry_delays_ms for h in handlers if h.inbox}
        )
        runner = ConsumerRunner(
            service=service.name,
            pool=pool,
            amqp_url=str(settings.amqp_url),
            handlers=handlers,
            prefetch=settings.amqp_prefetch,
            after_commit=open_unit_of_work(service.info, settings, pool, stack).wake,
            inbox=Inbox(settings.dedupe_window()),
            logins=Logins(settings.service_user_prefix),
        )
        probes.register("consumers", consumers_ready(runner))
        await runner.run()


async def _until_signal(work: Sequence[Awaitable[None]]) -> None:
    """Runs the roles until SIGINT/SIGTERM or until one fails; a role that simply ends is fine."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = {asyncio.ensure_future(w) for w in work}
    stopper = asyncio.ensure_future(stop.wait())
    pending = {*tasks, stopper}
    failure: BaseException | None = None
    while stopper in pending and failure is None:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        failure = next((t.exception() for t in done if t is not stopper and t.exception()), None)
        if not pending - {stopper}:
            break
    for task in pending:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if failure is not None:
        raise failure


ROLES: dict[str, Callable[[Service[Any], Any, RoleProbes], Awaitable[None]]] = {
    "api": run_api,
    "relay": run_relay,
    "consumers": run_consumers,
}
ALIASES = {"worker": ["relay", "consumers"], "all": ["migrate", "api", "relay", "consumers"]}


def _roles(parser: argparse.ArgumentParser, named: Sequence[str]) -> list[str]:
    if "migrate" in named and len(named) > 1:
        parser.error("migrate runs on its own; `all` migrates, then runs every role")
    return list(dict.fromkeys(role for name in named for role in ALIASES.get(name, [name])))


def main(service: Service[S], argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["secrets"]:
        secrets_main(service, argv[1:])
        return
    parser = argparse.ArgumentParser(
        prog=f"python -m {service.name}",
        epilog=f"python -m {service.name} secrets --help: its credentials, sealed in its schema",
    )
    parser.add_argument(
        "roles", nargs="+", choices=[*ROLES, "worker", "migrate", "all"], help="what to run"
    )
    args = parser.parse_args(argv)
    roles = _roles(parser, args.roles)
    configure_tracing(service.name)  # before any app, session or pool exists

    async def run() -> None:
        if roles == ["migrate"]:  # needs the database only, not the service's credentials
            common = load_settings(CommonSettings)
            configure_logging(service.name, common.log_level)
            await migrate_or_exit(service, common)
            return
        settings, from_store = await load_service_settings(service)
        configure_logging(service.name, settings.log_level)
        if from_store:
            log.info("credentials from the secret store: %s", ", ".join(from_store))
        if "migrate" in roles:
            await migrate_or_exit(service, settings)
        probes = RoleProbes(probed_roles(service, roles))
        async with AsyncExitStack() as stack:
            if "api" not in roles:  # the API serves the probes and /metrics for the process
                await serve_worker_probes(settings, probes, stack)
            await _until_signal(
                [ROLES[role](service, settings, probes) for role in roles if role in ROLES]
            )

    try:
        uvloop.run(run())
    except KeyboardInterrupt:
        sys.exit(130)
