"""deploy/grafana/payment-path.json: a Grafana dashboard whose every query promtool accepts and
names only metrics that the suite or RabbitMQ export."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

Promtool = Callable[..., subprocess.CompletedProcess[str]]  # the `promtool` fixture
ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "payment-path.json"

# What the suite exports (rtmn_shared/metrics.py, the services' metrics modules; a histogram
# adds _bucket, _sum and _count) and RabbitMQ's rabbitmq_prometheus per object
# (/metrics/per-object, 3.10 and later).
EXPORTED = {
    "rtmn_http_requests_total",
    "rtmn_http_request_duration_seconds_bucket",
    "rtmn_http_request_duration_seconds_sum",
    "rtmn_http_request_duration_seconds_count",
    "rtmn_events_published_total",
    "rtmn_events_consumed_total",
    "rtmn_outbox_lag_seconds",
    "rtmn_outbox_pending",
    "rtmn_provider_sandbox",
    "rtmn_secret_updated_timestamp_seconds",
    "rtmn_secret_key_in_use_since_timestamp_seconds",
    "rtmn_geo_breaker_open",
    "rtmn_otp_sends_total",
    "rtmn_otp_verifications_total",
    "rtmn_analytics_events_total",
    "rtmn_analytics_sink_requests_total",
    "rtmn_analytics_batch_events_bucket",
    "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_messages_unacked",
    "rabbitmq_queue_messages",
    "rabbitmq_queue_consumers",
}
# What Grafana substitutes before the query reaches Prometheus.
HISTOGRAM = ("_bucket", "_sum", "_count")
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "increase", "irate",
    "histogram_quantile", "and", "or", "unless", "on", "ignoring", "le", "time",
}  # fmt: skip


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside


def expressions() -> list[str]:
    found = [t["expr"] for p in panels(dashboard()) for t in p.get("targets", [])]
    assert len(found) >= 10
    return found


def substituted(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"an unknown variable in {expr}"
    return expr


def metric_names(expr: str) -> set[str]:
    """Identifiers outside label matchers, strings and durations, less PromQL's own words."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", bare)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
    return words - PROMQL_WORDS


def test_the_dashboard_is_grafana_json_with_a_datasource_variable() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 39
    assert board["uid"] == "rtmn-payment-path"
    assert board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_query_names_only_exported_metrics() -> None:
    for expr in expressions():
        unknown = metric_names(substituted(expr)) - EXPORTED
        assert not unknown, f"{expr}: not exported: {unknown}"


def test_the_metric_name_check_sees_an_unknown_metric() -> None:
    assert metric_names('sum by (queue) (rate(rtmn_nope_total{a="b"}[5m]))') == {"rtmn_nope_total"}


def test_the_suite_exports_every_rtmn_metric_on_the_list() -> None:
    sources = [ROOT / "shared" / "rtmn_shared" / "metrics.py"]
    sources += ROOT.glob("services/*/*/metrics.py")
    sources += [ROOT / "services" / "otp" / "otp" / "flows.py"]
    declared = {
        name
        for source in sources
        for name in re.findall(r'(?:Counter|Gauge|Histogram)\(\s*"(rtmn_\w+)"', source.read_text())
    }
    samples = declared | {f"{name}{suffix}" for name in declared for suffix in HISTOGRAM}
    assert {name for name in EXPORTED if name.startswith("rtmn_")} <= samples


def test_promtool_accepts_every_query(promtool: Promtool, tmp_path: Path) -> None:
    """Each query as a throwaway recording rule: `promtool check rules` parses its PromQL."""
    rules = [
        {"record": f"rtmn:dashboard_query:{i}", "expr": substituted(expr)}
        for i, expr in enumerate(expressions())
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = promtool("check", "rules", path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout
