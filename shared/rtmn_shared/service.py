"""One entry point per service: `python -m <service> ROLE [ROLE ...]`.

The roles are api, relay and consumers; several run in one process on one event loop (as
`make run` runs each service), where the relay hears of its own process's commits without a
NOTIFY. `worker` is the relay and the consumers; `all` is all three after migrating; `migrate`
only migrates. `python -m <service> secrets ...` keeps its credentials sealed in its schema
(cli/secrets.py).

A service describes itself with a `Service`; its composition root builds the HTTP app and the
event handlers from settings. Everything opened is closed on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import asyncpg
import uvloop
from aiohttp import web
from redis.asyncio import Redis

from rtmn_shared import db
from rtmn_shared.events.consumer import ConsumerRunner, Handler
from rtmn_shared.events.inbox import Inbox, check_window
from rtmn_shared.events.publishers import Logins
from rtmn_shared.events.relay import OutboxRelay
from rtmn_shared.events.wakeup import RelayWakeup, UnitOfWork
from rtmn_shared.logs import configure_logging, redact_url
from rtmn_shared.migrations import MigrationError, discover, migrate
from rtmn_shared.otel import configure_tracing
from rtmn_shared.partitions import keep_partitions
from rtmn_shared.secrets import SecretsError, SecretStore
from rtmn_shared.settings import (
    CommonSettings,
    SettingsError,
    load_settings,
    secret_settings,
    service_logins,
    set_in_environment,
)
from rtmn_shared.suite import SERVICES, ServiceInfo
from rtmn_shared.web.app import READINESS, Readiness
from rtmn_shared.web.probes import RoleProbes, consumers_ready, relay_ready, serve_probes

log = logging.getLogger(__name__)

S = TypeVar("S", bound=CommonSettings)


@dataclass(frozen=True)
class Service(Generic[S]):
    name: str
    settings: type[S]
    migrations: Path
    # Builds the HTTP app; resources it opens go on the stack and close with it.
    build_app: Callable[[S, AsyncExitStack], Awaitable[web.Application]]
    # Builds the event handlers of the consumer process, if the service consumes events.
    build_handlers: Callable[[S, AsyncExitStack], Awaitable[Sequence[Handler]]] | None = None

    @property
    def info(self) -> ServiceInfo:
        return SERVICES[self.name]


async def open_pool(
    info: ServiceInfo,
    settings: CommonSettings,
    stack: AsyncExitStack,
    *,
    durable_commits: bool = True,
) -> db.Pool:
    try:
        pool = await db.create_pool(info, settings, durable_commits=durable_commits)
    except (OSError, asyncpg.PostgresError) as error:
        raise SystemExit(
            f"{info.name}: database not reachable at {redact_url(settings.database_url)} "
            f"as {db.role_of(info, settings)}: {error}"
        ) from None
    stack.push_async_callback(pool.close)
    return pool


def background(work: Coroutine[Any, Any, None], stack: AsyncExitStack) -> None:
    """Runs `work` until the stack closes, then cancels it and waits for it to finish."""
    task = asyncio.ensure_future(work)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)


def open_unit_of_work(
    info: ServiceInfo, settings: CommonSettings, pool: db.Pool, stack: AsyncExitStack
) -> UnitOfWork:
    """Transactions that wake this service's relay once they commit (see events/wakeup.py)."""
    wakeup = RelayWakeup(lambda: db.connect(info, settings), info.schema)
    background(wakeup.run(), stack)
    return UnitOfWork(pool, wakeup.poke)


async def open_redis(settings: CommonSettings, stack: AsyncExitStack) -> Redis:
    redis = Redis.from_url(str(settings.redis_url), socket_timeout=5, socket_connect_timeout=2)
    stack.push_async_callback(redis.aclose)
    return redis


async def load_service_settings(service: Service[S]) -> tuple[S, list[str]]:
    """Settings from the environment and, with SECRETS_KEYS set, each credential the environment
    leaves unset from the service's sealed store: the environment wins, so local runs and tests
    keep using variables. Returns the settings and the names that came from the store."""
    given = set_in_environment(service.settings)
    logins = service_logins(service.name)  # its own broker and Redis users, where configured
    if "secrets_keys" not in given:
        return load_settings(service.settings, **logins), []
    common = load_settings(CommonSettings)
    ring = common.key_ring()  # a malformed ring stops start-up even when nothing needs it
    assert ring is not None
    declared = secret_settings(service.settings)
    wanted = [name for name, field in declared.items() if field not in given]
    stored: dict[str, str] = {}
    if wanted:
        async with AsyncExitStack() as stack:
            pool = await open_pool(service.info, common, stack)
            store = SecretStore(pool, ring)
            stored = await read_stored(store, wanted)
            if stored:  # the table exists and this process runs with what it holds
                await store.export_ages(service.name)
    values = {declared[name]: value for name, value in stored.items()}
    return load_settings(service.settings, **values, **logins), sorted(stored)


async def read_stored(store: SecretStore, names: Sequence[str]) -> dict[str, str]:
    """The stored values of `names`; one that cannot be opened stops start-up, named, its value
    never shown. Before the migrations have made the table nothing can have been stored."""
    found: dict[str, str] = {}
    problems = []
    for name in names:
        try:
            value = await store.get(name)
        except asyncpg.UndefinedTableError:
            return {}
        except SecretsError as error:
            problems.append(f"configuration error: {name} is stored but cannot be opened: {error}")
            continue
        if value is not None:
            found[name] = value
    if problems:
        raise SettingsError("\n".join(problems))
    return found


async def run_migrations(service: Service[Any], settings: CommonSettings) -> list[str]:
    """Applies what is new, then makes today's partitions so that none is missing at start; as the
    schema's owner, the only role that may change its objects."""
    conn = await db.connect(service.info, settings, as_owner=True)
    try:
        applied = await migrate(conn, service.info.schema, discover(service.migrations))
        await keep_partitions(conn, settings.dedupe_window())
        return applied
    finally:
        await conn.close()


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
        # Imported here, not above: the command is built on this module (Service, open_pool).
        from rtmn_shared.cli.secrets import main as secrets_main  # noqa: PLC0415

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
