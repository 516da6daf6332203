"""The payment path up as `make run` runs it, behind the nginx gateway, with the fakes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from _common import progress
from faults_kit import PAYMENT_PATH, User, migrate_all, register_users, supervisor

from loadkit.fakes import Fakes
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.processes import Gateway, Supervisor, free_port

ROOT = Path(__file__).resolve().parents[2]
USERS = 200


@dataclass
class Running:
    suite: Suite
    fakes: Fakes
    processes: Supervisor  # the payment path's processes (PAYMENT_PATH) and the fakes
    gateway: Gateway
    logs: Path

    async def register_users(self) -> list[User]:
        """Through the gateway, as clients register their devices."""
        suite, url = self.suite, self.gateway.url
        accounts = suite.amqp_url_as("accounts")  # the producer of user.registered
        return await register_users(suite, accounts, url, suite.database_url, USERS)


def environ(suite: Suite, fakes: Fakes) -> dict[str, str]:
    return {
        **suite.environ(),
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        # The per-user business limit (5 creates in 15 minutes) is not what is measured.
        "CREATE_LIMIT_PER_WINDOW": "100000000",
        **fakes.environ(),
    }


@asynccontextmanager
async def running() -> AsyncIterator[Running]:
    suite = Suite()
    await suite.create()
    fakes = Fakes.new()
    env = environ(suite, fakes)
    logs = ROOT / ".run" / "load" / suite.run_id
    processes = supervisor(env, logs)
    processes.specs.update(fakes.specs())
    names = [*PAYMENT_PATH, *fakes.specs()]
    gateway = Gateway(ROOT, logs / "gateway", {}, free_port())
    try:
        progress("migrating and starting the payment path")
        services = {s for n in PAYMENT_PATH if (s := processes.specs[n].service) is not None}
        await asyncio.to_thread(migrate_all, env, sorted(services))
        await gateway.front(processes, names)
        yield Running(suite, fakes, processes, gateway, logs)
    finally:
        gateway.stop()
        processes.stop_all()
        await suite.destroy()
