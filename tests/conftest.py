"""The whole suite as `make run` starts it (honcho, every process, nginx on :8080), on this run's
own database and vhost: for the end-to-end tests through the gateway (tests/e2e) and the real
Prometheus that scrapes it (tests/observability). Started once per run, for whichever asks."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from rtmn_shared.suite import SERVICES
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.processes import end_group
from rtmn_shared.testing.waiting import wait_for
from rtmn_shared.testing.whole_suite import demo_command, environ, migrate_all, write_env_file

ROOT = Path(__file__).resolve().parents[1]
GATEWAY = "http://127.0.0.1:8080"
PORTS = [8080, *(info.port for info in SERVICES.values())]


@dataclass(frozen=True)
class RunningSuite:
    suite: Suite  # its own database, vhost, logins and token key
    env_file: Path
    private_key: Path
    env: dict[str, str]
    honcho: subprocess.Popen[bytes]
    work: Path

    def demo(self) -> list[str]:
        """`make demo`'s command against this suite."""
        return demo_command(self.env_file, self.private_key)


def _busy(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def _answers(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):  # still starting: slow to answer, or not yet
        return False


@pytest.fixture(scope="session")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSuite]:
    """Migrates every schema and starts the Procfile, on a database and vhost of its own (what
    other tests of the run leave behind, e.g. a relay holding a service's outbox lock, never
    stands in for the suite's processes); stops the whole process group after."""
    taken = [port for port in PORTS if _busy(port)]
    if taken:
        pytest.skip(f"ports {taken} are in use (is `make run` running?); these tests need them")
    suite = Suite()
    asyncio.run(suite.create())
    try:
        yield from _started(suite, tmp_path_factory)
    finally:
        asyncio.run(suite.destroy())


def _started(suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSuite]:
    work = tmp_path_factory.mktemp("e2e")
    (work / "jwt-private.pem").write_text(suite.private_key)
    env = environ(suite, work, GATEWAY)
    env_file = write_env_file(work / "env", env)
    migrate_all(ROOT, env)
    with (work / "honcho.log").open("w") as log:
        honcho = subprocess.Popen(
            [str(ROOT / ".venv/bin/honcho"), "start", "-f", "Procfile", "-e", str(env_file)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield RunningSuite(suite, env_file, work / "jwt-private.pem", env, honcho, work)
        finally:
            end_group(honcho, timeout=30)


@pytest.fixture(scope="session")
async def running_suite(processes: RunningSuite) -> RunningSuite:
    """The suite once every service answers /readyz and the gateway /healthz."""
    urls = [f"{GATEWAY}/healthz"] + [
        f"http://127.0.0.1:{info.port}/readyz" for info in SERVICES.values()
    ]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:

        async def all_ready() -> bool:
            if processes.honcho.poll() is not None:
                raise AssertionError(f"honcho exited; see {processes.work / 'honcho.log'}")
            return all(await asyncio.gather(*(_answers(http, url) for url in urls)))

        await wait_for(all_ready, timeout=120, interval=0.5, message="every service ready")
    return processes
