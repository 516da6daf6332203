"""Three RabbitMQ nodes of this machine's installation, clustered (rtmn_shared/testing/
rabbit_cluster.py), and the payment path on them with every worker twice (Procfile.twice), on a
PostgreSQL cluster of its own and the providers' contract fakes. The run's vhost and logins are
made on the cluster, so this directory's `suite` replaces the plugin's; the fault table prints at
the end of the run, with the time each fault took to be taken over."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "faults"))
sys.path.insert(0, str(Path(__file__).parents[1] / "security"))

from cluster_kit import SPECS, TAKEOVER, many_clients
from faults_kit import (
    HEADER,
    RESULTS,
    ROOT,
    Client,
    Cluster,
    Harness,
    Providers,
    migrate_all,
    register_users,
    render,
    suite_environ,
)

from rtmn_shared.provision import provision
from rtmn_shared.suite import SERVICES
from rtmn_shared.testing.infra import HARNESS, Suite
from rtmn_shared.testing.processes import Gateway, Supervisor, free_port
from rtmn_shared.testing.rabbit_cluster import RabbitCluster

USERS = 40
LOGS = ROOT / ".run" / "cluster"


@pytest.fixture(scope="session")
def rabbit() -> Iterator[RabbitCluster]:
    cluster = RabbitCluster.create("rtmn-c")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
async def suite(rabbit: RabbitCluster) -> AsyncIterator[Suite]:
    """The run's vhost and logins on the cluster (every client lists all three nodes)."""
    run = Suite(amqp_hosts=tuple(n.address for n in rabbit.nodes), broker_node=rabbit.nodes[0].name)
    await run.create()
    try:
        yield run
    finally:
        # Whichever node is up administers the teardown (a test may leave one restarting).
        run.broker_node = rabbit.live()[0].name
        await run.destroy()


@pytest.fixture(scope="session")
async def harness(suite: Suite, rabbit: RabbitCluster) -> AsyncIterator[Harness]:
    database = Cluster.create(f"rtmncluster{suite.run_id}")
    amqp_url = suite.amqp_url_as(HARNESS)
    gateway = Gateway(ROOT, LOGS / suite.run_id / "gateway", {}, free_port())
    providers = None
    processes = None
    try:
        await provision(database.admin_dsn, suite.database, list(SERVICES.values()))
        providers = Providers.start()
        database_url = database.url(suite.database)
        env = suite_environ(suite, database_url, amqp_url, providers)
        migrate_all(env, sorted({spec.service for spec in SPECS.values() if spec.service}))
        processes = Supervisor(ROOT, env, LOGS / suite.run_id, SPECS)
        await gateway.front(processes, list(SPECS))
        accounts = suite.amqp_url_as("accounts")  # the producer of user.registered
        users = await register_users(suite, accounts, processes.url("notify"), database_url, USERS)
        async with many_clients() as http:
            commerce = suite.token("commerce", "service", ttl_seconds=6 * 3600)
            # Through the gateway, in front of both of each service's API processes.
            client = Client(http, gateway.url, providers, commerce)
            yield Harness(
                suite,
                suite.vhost,
                amqp_url,
                database_url,
                providers,
                processes,
                users,
                client,
                database,
                tuple(n.name for n in rabbit.nodes),
            )
    finally:
        gateway.stop()
        if processes is not None:
            processes.stop_all()
        if providers is not None:
            providers.stop()
        database.drop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RESULTS:
        terminalreporter.section("cluster faults: every payment's effects, exactly once")
        rows = [
            (*r.row()[:-1], f"{TAKEOVER[r.fault]:.1f} s" if r.fault in TAKEOVER else "-", r.note)
            for r in RESULTS
        ]
        terminalreporter.write_line(render([(*HEADER[:-1], "time to take over", "notes"), *rows]))
