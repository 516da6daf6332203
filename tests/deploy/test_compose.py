"""docker-compose.yml: valid per the Compose specification, and started in a safe order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rtmn_shared.suite import SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
INFRA = ("postgres", "redis", "rabbitmq")
# Services with events to relay or consume run a worker beside the API (geo has neither).
WORKERS = {"payments", "otp", "notify", "media", "wallet", "analytics"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    # PyYAML resolves the anchors and `<<` merges as Compose does.
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def schema_check(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One run of the CLI (it takes seconds to start) over our file and a known-broken one."""
    tool = Path(sys.executable).with_name("check-jsonschema")
    if not tool.exists():
        pytest.skip("check-jsonschema is not installed (a dev dependency: make install)")
    # A depends_on condition the specification does not know: the check must be able to fail.
    broken = tmp_path_factory.mktemp("compose") / "broken-compose.yml"
    broken.write_text(
        "services:\n  a:\n    image: x\n    depends_on:\n"
        "      b: {condition: service_ready}\n  b:\n    image: y\n"
    )
    done = subprocess.run(
        [str(tool), "--builtin-schema", "vendor.compose-spec", str(COMPOSE), str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr, broken


def test_the_file_validates_against_the_compose_specification(
    schema_check: tuple[str, Path],
) -> None:
    output, _ = schema_check
    assert str(COMPOSE) not in output, output


def test_the_schema_check_rejects_a_broken_file(schema_check: tuple[str, Path]) -> None:
    output, broken = schema_check
    assert f"{broken}::$.services.a.depends_on" in output, output


def test_every_service_has_its_migration_api_and_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in SERVICES:
        for role, command in ((f"{name}-migrate", ["migrate"]), (name, None)):
            assert role in services, role
            assert services[role].get("command") == command, role
            assert services[role]["build"]["args"]["SERVICE"] == name, role
            assert services[role]["build"]["dockerfile"] == "deploy/Dockerfile", role
        worker = services.get(f"{name}-worker")
        assert (worker is not None) == (name in WORKERS), name
        if worker is not None:
            assert worker["command"] == ["worker"]
            # Healthy when ready, asked on the metrics port its event loop serves the probes on.
            port = worker["environment"]["METRICS_PORT"]
            assert f"127.0.0.1:{port}/readyz" in " ".join(worker["healthcheck"]["test"])


def test_infrastructure_has_healthchecks_and_named_volumes(compose: dict[str, Any]) -> None:
    services, volumes = compose["services"], compose["volumes"]
    for name in INFRA:
        assert services[name]["healthcheck"]["test"], name
        sources = [v.split(":")[0] for v in services[name]["volumes"]]
        data = [s for s in sources if not s.startswith("./")]  # ./ mounts are read-only config
        assert data, f"{name} keeps its data in a volume"
        assert set(data) <= volumes.keys(), f"{name} keeps its data in a named volume: {data}"
    assert services["postgres"]["image"].startswith("postgis/postgis:")
    assert services["rabbitmq"]["image"].endswith("-management")


def test_start_order_is_gated_on_health_and_completion(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions, not a list"
        for target, rule in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            one_shot = services[target].get("restart") == "no"
            wanted = "service_completed_successfully" if one_shot else "service_healthy"
            if target == "minio":  # no healthcheck in its image; minio-init retries instead
                wanted = "service_started"
            assert condition == wanted, f"{name} -> {target}: {condition}"
    # db-init also makes the broker logins and Redis users: it waits for all three.
    healthy = {"condition": "service_healthy"}
    assert services["db-init"]["depends_on"] == {
        "postgres": healthy,
        "rabbitmq": healthy,
        "redis": healthy,
    }
    for name in SERVICES:
        api = services[name]["depends_on"]
        assert set(INFRA) <= api.keys(), name
        assert api[f"{name}-migrate"]["condition"] == "service_completed_successfully"
        migrate = services[f"{name}-migrate"]["depends_on"]
        assert migrate["db-init"]["condition"] == "service_completed_successfully"
    assert services["gateway"]["depends_on"] == {
        name: {"condition": "service_healthy"} for name in SERVICES
    }


def test_services_share_one_env_file_and_reach_the_infrastructure_by_name(
    compose: dict[str, Any],
) -> None:
    for name in [*SERVICES, *(f"{n}-worker" for n in WORKERS), *(f"{n}-migrate" for n in SERVICES)]:
        service = compose["services"][name]
        assert service["env_file"] == [".env"], name
        assert service.get("user") is None, f"{name} runs as the image's non-root user"
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgresql://postgres:5432/"), name
        assert env["REDIS_URL"].startswith("redis://redis:6379/"), name
        # Its own broker and Redis login (settings.service_logins), never the administrator's.
        assert env["AMQP_URL"] == "amqp://rabbitmq:5672/", name
        if name.endswith("-migrate"):  # as the schema's owner
            assert "DB_MIGRATION_PASSWORD" in env, name
            continue
        # As the runtime role, which never holds the owner's password.
        assert {"DB_PASSWORD", "AMQP_PASSWORD", "REDIS_PASSWORD"} <= env.keys(), name
        assert "DB_MIGRATION_PASSWORD" not in env, name
        service_name = name.split("-")[0]
        assert env["AMQP_PASSWORD"].startswith(f"${{{service_name.upper()}_AMQP_PASSWORD"), name


def test_the_gateway_serves_the_shared_config_on_8080(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    assert "8080:8080" in gateway["ports"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in gateway["volumes"]}
    assert mounts == {
        "/etc/rtmn/nginx.conf": "./deploy/gateway/nginx.conf",
        "/etc/rtmn/upstreams.conf": "./deploy/gateway/upstreams/cluster.conf",
    }
    assert gateway["user"] != "0"
    assert "-c /etc/rtmn/nginx.conf" in gateway["command"][0]
