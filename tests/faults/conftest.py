"""The suite's payment path as separate processes (a Supervisor, not honcho, so one can be
killed and restarted), on a PostgreSQL cluster of its own that a test may restart, with the
providers' contract fakes; and the fault table printed at the end of the run."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "security"))

from faults_kit import (
    HEADER,
    PAYMENT_PATH,
    RESULTS,
    Client,
    Cluster,
    Harness,
    Providers,
    migrate_all,
    register_users,
    render,
    suite_environ,
    supervisor,
)

from rtmn_shared.provision import provision
from rtmn_shared.suite import SERVICES
from rtmn_shared.testing.infra import HARNESS, Suite, rabbitmqctl

USERS = 40
# Kept after the run (pytest's own temporary folders are pruned by concurrent runs).
LOGS = Path(__file__).resolve().parents[2] / ".run" / "faults"


@pytest.fixture(scope="session")
async def harness(suite: Suite) -> AsyncIterator[Harness]:
    cluster = Cluster.create(f"rtmnfaults{suite.run_id}")
    # A vhost of its own: the end-to-end tests' processes, on the run's vhost, live as long as
    # the session and would take this stream's messages into their own database.
    vhost = f"{suite.vhost}-faults"
    amqp_url = suite.amqp_url_as(HARNESS, vhost)
    providers = None
    processes = None
    try:
        rabbitmqctl("add_vhost", vhost)
        suite.grant(vhost)  # each service logs in as itself there too
        await provision(cluster.admin_dsn, suite.database, list(SERVICES.values()))
        providers = Providers.start()
        database_url = cluster.url(suite.database)
        env = suite_environ(suite, database_url, amqp_url, providers)
        services = sorted({name.split("-")[0] for name in PAYMENT_PATH})
        migrate_all(env, services)
        processes = supervisor(env, LOGS / suite.run_id)
        processes.start_all(PAYMENT_PATH)
        await processes.wait_ready(PAYMENT_PATH)
        accounts = suite.amqp_url_as("accounts", vhost)  # the producer of user.registered
        users = await register_users(suite, accounts, processes.url("notify"), database_url, USERS)
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=10)
        ) as http:
            commerce = suite.token("commerce", "service", ttl_seconds=6 * 3600)
            client = Client(http, processes.url("payments"), providers, commerce)
            yield Harness(
                suite, vhost, amqp_url, database_url, providers, processes, users, client, cluster
            )
    finally:
        if processes is not None:
            processes.stop_all()
        if providers is not None:
            providers.stop()
        cluster.drop()
        rabbitmqctl("delete_vhost", vhost)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RESULTS:
        terminalreporter.section("faults: every payment's effects, exactly once")
        terminalreporter.write_line(render([HEADER, *(r.row() for r in RESULTS)]))
