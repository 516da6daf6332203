"""A process's probes tell the truth: a worker serves /healthz, /readyz and /metrics from its event
loop, ready while it consumes and relays and unready while the broker shuts it out; an API
process reports its relay and consumers in its own /readyz.

Real processes (`python -m wallet ...`) on the run's database and a vhost of this module's own,
whose permissions a test takes away and gives back while the broker closes its connections: the
broker stays up for everyone else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from geo.app import SERVICE as GEO
from otp.app import SERVICE as OTP
from rtmn_shared.access import broker_grant
from rtmn_shared.entry import probed_roles
from rtmn_shared.testing.infra import Suite, rabbitmqctl
from rtmn_shared.testing.processes import free_port
from rtmn_shared.testing.waiting import wait_for
from rtmn_shared.web.app import Readiness
from rtmn_shared.web.probes import RoleProbes
from wallet.app import SERVICE as WALLET

ROOT = Path(__file__).resolve().parents[2]
# An outage seen within this many seconds is "within seconds"; so is the way back, given the
# consumers' reconnection backoff.
NOTICED_WITHIN = 5.0
BACK_WITHIN = 90.0


class Wallet:
    """`python -m wallet ROLE ...` as a process of its own, stopped and reaped at the end."""

    def __init__(self, env: dict[str, str], logs: Path, *roles: str) -> None:
        self.port = free_port()
        key = "HTTP_PORT" if "api" in roles else "METRICS_PORT"
        self.log = logs / f"wallet-{'-'.join(roles)}-{self.port}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wallet", *roles],
                cwd=ROOT,
                env={**os.environ, **env, key: str(self.port)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a test that stopped it may have failed
            self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Vhost:
    """The module's vhost; `shut_out` makes the broker refuse and drop this vhost's clients (the
    wallet, logged in as itself)."""

    def __init__(self, name: str, user: str) -> None:
        self.name = name
        self.user = user

    def shut_out(self) -> None:
        rabbitmqctl("clear_permissions", "-p", self.name, self.user)
        rabbitmqctl("close_all_connections", "-p", self.name, "--limit", "1000", "probe test")

    def let_in(self) -> None:
        grant = broker_grant("wallet")
        rabbitmqctl(
            "set_permissions", "-p", self.name, self.user, grant.configure, grant.write, grant.read
        )


@pytest.fixture(scope="module")
def vhost(suite: Suite) -> Iterator[Vhost]:
    # Its own vhost: shutting it out must not disturb other tests' processes on the run's vhost.
    own = Vhost(f"{suite.vhost}-probes", suite.logins.of("wallet"))
    rabbitmqctl("add_vhost", own.name)
    own.let_in()
    try:
        yield own
    finally:
        rabbitmqctl("delete_vhost", own.name)


@pytest.fixture(scope="module")
def wallet_env(suite: Suite, vhost: Vhost) -> dict[str, str]:
    env = {
        **suite.environ(),
        "AMQP_URL": suite.amqp_url_as("wallet", vhost.name),
        "LOG_LEVEL": "INFO",
    }
    subprocess.run(
        [sys.executable, "-m", "wallet", "migrate"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )
    return env


@pytest.fixture
def start(wallet_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Wallet]]:
    started: list[Wallet] = []

    def start(*roles: str) -> Wallet:
        started.append(Wallet(wallet_env, tmp_path, *roles))
        return started[-1]

    yield start
    for wallet in started:
        wallet.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # As the kubelet's timeoutSeconds: an API's /readyz may take its 1 s checks' time.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        yield session


async def probe(
    http: aiohttp.ClientSession, url: str
) -> tuple[int, dict[str, Any]] | tuple[None, None]:
    """The status and body of a probe, or (None, None) while nothing answers in time."""
    try:
        async with http.get(url) as response:
            return response.status, await response.json()
    except (aiohttp.ClientError, TimeoutError):
        return None, None


async def status_becomes(
    http: aiohttp.ClientSession, url: str, status: int, within: float, what: str
) -> dict[str, Any]:
    last: tuple[int, dict[str, Any]] | tuple[None, None] = (None, None)

    async def check() -> bool:
        nonlocal last
        last = await probe(http, url)
        return last[0] == status

    try:
        await wait_for(check, timeout=within, interval=0.1, message=what)
    except AssertionError as error:
        raise AssertionError(f"{error}; the probe said {last}") from None
    body = last[1]
    assert body is not None
    return body


async def test_a_role_is_unready_until_it_has_registered_what_makes_it_ready() -> None:
    probes = RoleProbes(["relay", "consumers"])
    readiness = Readiness(extra=probes.checks())
    assert await readiness.check() == {
        "relay": "down (NotStarted)",
        "consumers": "down (NotStarted)",
    }

    async def consuming() -> None:
        return None

    probes.register("consumers", consuming)
    assert await readiness.check() == {"relay": "down (NotStarted)", "consumers": "ok"}


def test_only_the_roles_a_service_has_are_probed() -> None:
    assert probed_roles(WALLET, ["api", "relay", "consumers"]) == ["relay", "consumers"]
    assert probed_roles(OTP, ["api", "relay", "consumers"]) == ["relay"]  # it consumes nothing
    assert probed_roles(GEO, ["api"]) == []


async def test_a_worker_is_ready_while_it_consumes_and_relays_and_not_while_shut_out(
    start: Callable[..., Wallet], http: aiohttp.ClientSession, vhost: Vhost
) -> None:
    worker = start("worker")
    readyz = f"{worker.url}/readyz"
    body = await status_becomes(http, readyz, 200, 60, "the worker ready")
    assert body["checks"] == {"relay": "ok", "consumers": "ok"}

    vhost.shut_out()
    try:
        body = await status_becomes(http, readyz, 503, NOTICED_WITHIN, "the worker unready")
        assert body["checks"]["consumers"] == "down (NotConsuming)"
    finally:
        vhost.let_in()
    body = await status_becomes(http, readyz, 200, BACK_WITHIN, "the worker ready again")
    assert body["checks"] == {"relay": "ok", "consumers": "ok"}
    assert worker.process.poll() is None, worker.output()


async def test_a_relay_shut_out_of_the_broker_is_unready_until_it_reconnects(
    start: Callable[..., Wallet], http: aiohttp.ClientSession, vhost: Vhost
) -> None:
    relay = start("relay")
    readyz = f"{relay.url}/readyz"
    await status_becomes(http, readyz, 200, 60, "the relay ready")

    vhost.shut_out()
    try:
        body = await status_becomes(http, readyz, 503, NOTICED_WITHIN, "the relay unready")
        assert body["checks"] == {"relay": "down (BrokerDisconnected)"}
    finally:
        vhost.let_in()
    await status_becomes(http, readyz, 200, BACK_WITHIN, "the relay ready again")


async def test_a_relay_standing_by_for_the_lock_is_ready(
    start: Callable[..., Wallet], http: aiohttp.ClientSession
) -> None:
    leader = start("relay")
    await status_becomes(http, f"{leader.url}/readyz", 200, 60, "the leading relay ready")
    standby = start("relay")
    await wait_for(
        lambda: "standing by" in standby.output(), timeout=60, message="the second relay waiting"
    )
    body = await status_becomes(http, f"{standby.url}/readyz", 200, 10, "the standby ready")
    assert body["checks"] == {"relay": "ok"}


async def test_a_stopped_loop_fails_healthz_and_answers_again_once_it_runs(
    start: Callable[..., Wallet], http: aiohttp.ClientSession
) -> None:
    worker = start("worker")
    await status_becomes(http, f"{worker.url}/healthz", 200, 60, "the worker alive")
    async with http.get(f"{worker.url}/metrics") as response:
        assert response.status == 200
        assert "rtmn_" in await response.text()

    worker.process.send_signal(signal.SIGSTOP)  # its loop, like everything in it, stands still
    try:
        assert await probe(http, f"{worker.url}/healthz") == (None, None)
    finally:
        worker.process.send_signal(signal.SIGCONT)
    await status_becomes(http, f"{worker.url}/healthz", 200, 10, "the worker alive again")


async def test_an_api_process_reports_its_relay_and_consumers_in_its_readyz(
    start: Callable[..., Wallet], http: aiohttp.ClientSession, vhost: Vhost
) -> None:
    wallet = start("api", "relay", "consumers")
    readyz = f"{wallet.url}/readyz"
    body = await status_becomes(http, readyz, 200, 60, "the wallet process ready")
    assert body["checks"]["relay"] == "ok"
    assert body["checks"]["consumers"] == "ok"
    assert {"database", "broker"} <= set(body["checks"])

    vhost.shut_out()
    try:
        body = await status_becomes(http, readyz, 503, NOTICED_WITHIN, "the process unready")
        assert body["checks"]["consumers"] == "down (NotConsuming)"
    finally:
        vhost.let_in()
    await status_becomes(http, readyz, 200, BACK_WITHIN, "the wallet process ready again")
