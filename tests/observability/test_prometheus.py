"""A real Prometheus (Debian's 2.42) scraping the suite as `make run` starts it, configured by
deploy/prometheus/prometheus.yml with deploy/prometheus/rules.yml: after a few payments through
the gateway every panel of deploy/grafana/payment-path.json shows data, and every rule
evaluates without an error."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from rtmn_shared.suite import SERVICES
from rtmn_shared.testing.processes import end_group, free_port
from rtmn_shared.testing.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "payment-path.json"
PROMETHEUS = ROOT / "scripts" / "prometheus.sh"
OBSERVE = ROOT / "scripts" / "observe.sh"  # `make observe`
GATEWAY = "http://127.0.0.1:8080"
Promtool = Callable[..., subprocess.CompletedProcess[str]]  # the `promtool` fixture
RABBITMQ = "http://127.0.0.1:15692/metrics/per-object"
# What Grafana would substitute, sized for a 1 s scrape interval and a minute-old Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}


@dataclass(frozen=True)
class Prometheus:
    url: str
    log: Path

    async def query(self, http: aiohttp.ClientSession, expr: str) -> list[dict[str, Any]]:
        async with http.get(f"{self.url}/api/v1/query", params={"query": expr}) as response:
            body = await response.json()
        assert body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def get(self, http: aiohttp.ClientSession, path: str) -> Any:
        async with http.get(f"{self.url}{path}") as response:
            body = await response.json()
        assert body["status"] == "success", f"{path}: {body}"
        return body["data"]


def configured(work: Path) -> Path:
    """deploy/prometheus/prometheus.yml as is, but scraping and evaluating every second."""
    config = yaml.safe_load(CONFIG.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(CONFIG.parent / name) for name in config["rule_files"]]
    path = work / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


async def rabbitmq_exports(http: aiohttp.ClientSession) -> bool:
    try:
        async with http.get(RABBITMQ) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


RABBITMQ_OFF = (
    "RabbitMQ's rabbitmq_prometheus plugin does not answer on 15692 (`make infra` enables it "
    "online: rabbitmq-plugins enable rabbitmq_prometheus); the scrape job stays in "
    "deploy/prometheus/prometheus.yml"
)


def listening_on(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port`, as `ss` reports them."""
    done = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    )
    return {line.split()[3].rsplit(":", 1)[0] for line in done.stdout.splitlines()}


@pytest.fixture(scope="module")
def prometheus_process(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen[bytes], Prometheus]]:
    """`make observe`'s script on a free port, with its own storage and the scrape config at a
    1 s interval; `prometheus` waits until it scrapes."""
    installed = subprocess.run(
        ["bash", str(PROMETHEUS), "prometheus", "--version"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,  # the first call may install the package
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    work = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    log = work / "observe.log"
    env = {
        **os.environ,
        "PROMETHEUS_PORT": str(port),
        "PROMETHEUS_CONFIG": str(configured(work)),
        "PROMETHEUS_DATA": str(work / "data"),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", str(OBSERVE)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, Prometheus(f"http://127.0.0.1:{port}", log)
    finally:
        end_group(process)


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture(scope="module")
async def prometheus(
    prometheus_process: tuple[subprocess.Popen[bytes], Prometheus],
    running_suite: Any,
    http: aiohttp.ClientSession,
) -> Prometheus:
    """Prometheus once it is ready and has scraped every service of the suite."""
    process, server = prometheus_process

    async def scraping() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{server.log.read_text()[-3000:]}")
        try:
            targets = await server.get(http, "/api/v1/targets")
        except (aiohttp.ClientError, TimeoutError):
            return False  # not listening yet
        up = [t for t in targets["activeTargets"] if t["labels"]["job"] == "rtmn"]
        return len(up) == len(SERVICES) and all(t["health"] == "up" for t in up)

    await wait_for(scraping, timeout=60, interval=0.2, message="every service scraped")
    return server


@pytest.fixture(scope="module")
async def payments(prometheus: Prometheus, running_suite: Any, http: aiohttp.ClientSession) -> None:
    """Two payment stories (create, signed webhook, credit, email, push, refund) through the
    gateway, and one webhook the gateway passes on but payments refuses (a bad signature)."""
    demo = running_suite.demo()
    stories = await asyncio.gather(
        *(
            asyncio.to_thread(
                subprocess.run, demo, cwd=ROOT, capture_output=True, text=True, timeout=120
            )
            for _ in range(2)
        )
    )
    for story in stories:
        assert story.returncode == 0, story.stdout + story.stderr
    body = b'{"entity": "event", "event": "payment.captured", "created_at": %d}' % time.time()
    headers = {"X-Razorpay-Signature": "0" * 64, "Content-Type": "application/json"}
    async with http.post(f"{GATEWAY}/api/webhooks/razorpay", data=body, headers=headers) as bad:
        assert bad.status == 400, await bad.text()


def panel_queries(rabbitmq: bool) -> list[tuple[str, str]]:
    """(panel title, query as Grafana sends it) for every panel; RabbitMQ's only if it exports."""
    found = []
    rows = json.loads(DASHBOARD.read_text())["panels"]
    for panel in [*rows, *(inner for row in rows for inner in row.get("panels", []))]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{panel['title']}: an unknown variable in {expr}"
            if rabbitmq or "rabbitmq_" not in expr:
                found.append((panel["title"], expr))
    return found


def test_the_scrape_config_names_every_service_port_and_promtool_accepts_it(
    promtool: Promtool,
) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    [rtmn] = jobs["rtmn"]["static_configs"]
    assert rtmn["targets"] == [f"127.0.0.1:{info.port}" for info in SERVICES.values()]
    assert jobs["rabbitmq"]["metrics_path"] == "/metrics/per-object"
    assert config["rule_files"] == ["rules.yml"]
    done = promtool("check", "config", CONFIG)
    assert done.returncode == 0, done.stdout + done.stderr


async def test_prometheus_scrapes_every_service_of_the_suite(
    prometheus: Prometheus, http: aiohttp.ClientSession
) -> None:
    targets = await prometheus.get(http, "/api/v1/targets")
    scraped = {t["labels"]["instance"] for t in targets["activeTargets"]}
    assert {f"127.0.0.1:{info.port}" for info in SERVICES.values()} <= scraped
    assert "127.0.0.1:15692" in scraped, "RabbitMQ's own endpoint is a scrape job"
    services = await prometheus.query(http, "count by (service) (rtmn_http_requests_total)")
    assert set(SERVICES) <= {s["metric"]["service"] for s in services}


async def test_make_observe_says_where_to_look_and_listens_on_loopback_only(
    prometheus: Prometheus, http: aiohttp.ClientSession
) -> None:
    guide = prometheus.log.read_text()
    for place in ("/classic/targets", "/classic/alerts", "/classic/graph"):
        assert f"{prometheus.url}{place}" in guide, guide
        async with http.get(f"{prometheus.url}{place}") as page:
            assert page.status == 200, place
    assert "deploy/grafana/payment-path.json" in guide
    assert listening_on(int(prometheus.url.rsplit(":", 1)[1])) == {"127.0.0.1"}


async def test_every_dashboard_panel_shows_data_after_a_few_payments(
    prometheus: Prometheus, payments: None, http: aiohttp.ClientSession
) -> None:
    queries = panel_queries(await rabbitmq_exports(http))
    empty: list[str] = []

    async def all_answer() -> bool:
        empty[:] = [
            f"{title}: {expr}" for title, expr in queries if not await prometheus.query(http, expr)
        ]
        return not empty

    try:
        await wait_for(all_answer, timeout=45, interval=1, message="every panel's data")
    except AssertionError:
        raise AssertionError("panels without data:\n" + "\n".join(empty)) from None


async def test_rabbitmq_reports_each_queue_of_the_suite(
    prometheus: Prometheus, payments: None, http: aiohttp.ClientSession, running_suite: Any
) -> None:
    if not await rabbitmq_exports(http):
        pytest.skip(RABBITMQ_OFF)
    vhost = running_suite.env["AMQP_URL"].rsplit("/", 1)[-1]

    async def queues() -> set[str]:
        found = await prometheus.query(
            http, f'rabbitmq_queue_messages_ready{{job="rabbitmq", vhost="{vhost}"}}'
        )
        return {s["metric"]["queue"] for s in found}

    seen = await wait_for(queues, timeout=30, interval=1, message=f"queues of vhost {vhost}")
    assert any(queue.endswith(".dlq") for queue in seen), seen
    assert any(not queue.endswith(".dlq") for queue in seen), seen


async def test_a_query_on_a_metric_nobody_exports_has_no_data(
    prometheus: Prometheus, http: aiohttp.ClientSession
) -> None:
    """The panel check above is not vacuous: an empty answer is how Prometheus says no data."""
    assert await prometheus.query(http, "sum by (route) (rate(rtmn_nope_total[1m]))") == []


async def test_every_rule_evaluates_without_an_error(
    prometheus: Prometheus, http: aiohttp.ClientSession
) -> None:
    async def evaluated() -> list[dict[str, Any]]:
        groups = (await prometheus.get(http, "/api/v1/rules"))["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if all(rule["health"] != "unknown" for rule in rules) else []

    rules = await wait_for(evaluated, timeout=30, interval=0.5, message="every rule evaluated")
    groups = yaml.safe_load(RULES.read_text())["groups"]
    assert {rule["name"] for rule in rules} == {r["alert"] for g in groups for r in g["rules"]}
    failing = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert not failing
