"""deploy/prometheus/rules.yml: promtool accepts it, and its unit tests see every alert fire on
the series it watches and resolve when they recover."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

Promtool = Callable[..., subprocess.CompletedProcess[str]]  # the `promtool` fixture
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
HERE = Path(__file__).parent
UNIT_TESTS = (HERE / "rules_test.yml", HERE / "secrets_rules_test.yml")


def alerts() -> dict[str, dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def test_promtool_accepts_the_rules(promtool: Promtool) -> None:
    done = promtool("check", "rules", RULES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in done.stdout


def test_promtool_refuses_a_broken_rule(promtool: Promtool, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(RULES.read_text().replace("> 60", "> > 60", 1))
    done = promtool("check", "rules", broken)
    assert done.returncode != 0


def test_every_alert_fires_and_resolves_in_the_unit_tests(promtool: Promtool) -> None:
    done = promtool("test", "rules", *UNIT_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr


def seconds(duration: str) -> int:
    """promtool's eval_time as this file writes it: minutes or hours."""
    return int(duration[:-1]) * {"m": 60, "h": 3600}[duration[-1]]


def test_every_alert_is_tested_firing_then_resolved() -> None:
    fired: dict[str, int] = {}
    resolved: dict[str, int] = {}
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case["alert_rule_test"]:
                when, name = seconds(check["eval_time"]), check["alertname"]
                if check["exp_alerts"]:
                    fired[name] = min(fired.get(name, when), when)
                else:
                    resolved[name] = max(resolved.get(name, when), when)
    assert set(fired) == set(alerts()) == set(resolved)
    assert all(fired[name] < resolved[name] for name in fired), "quiet again after firing"


def test_the_unit_tests_fail_when_an_alert_does_not_fire(
    promtool: Promtool, tmp_path: Path
) -> None:
    """The tests are not vacuous: raise one threshold out of reach and they fail."""
    rules = tmp_path / "deploy" / "prometheus" / "rules.yml"
    rules.parent.mkdir(parents=True)
    rules.write_text(RULES.read_text().replace("> 60", "> 6000", 1))
    tests = tmp_path / "tests" / "observability" / "rules_test.yml"
    tests.parent.mkdir(parents=True)
    tests.write_text(UNIT_TESTS[0].read_text())
    done = promtool("test", "rules", tests)
    assert done.returncode != 0
    assert "alertname: OutboxLagging" in done.stdout + done.stderr


def test_every_alert_has_a_severity_a_summary_and_a_runbook_line() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text()
    for name, rule in alerts().items():
        assert rule["labels"] in ({"severity": "critical"}, {"severity": "warning"}), name
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["summary"], name
        assert annotations["runbook"] == "deploy/README.md#alerts", name
        assert re.search(rf"^\| `{name}` \|", readme, re.MULTILINE), f"{name}: no runbook line"
