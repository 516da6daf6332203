"""The gateway's nginx configuration passes `nginx -t` and its upstreams match the deployments."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from rtmn_shared.suite import SERVICES

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "deploy" / "gateway"


def upstreams(conf: str) -> dict[str, str]:
    """{upstream name: "host:port"} of an upstreams file (one server per upstream)."""
    found = re.findall(r"upstream\s+(\w+)\s*\{\s*server\s+([\w.:-]+)", conf)
    return dict(found)


def test_nginx_accepts_the_configuration_with_local_upstreams() -> None:
    # scripts/gateway.sh installs nginx when it is missing, then runs `nginx -t` on a copy.
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gateway.sh"), "check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_every_service_has_an_upstream_at_its_design_port_in_both_files() -> None:
    local = upstreams((GATEWAY / "upstreams" / "local.conf").read_text())
    cluster = upstreams((GATEWAY / "upstreams" / "cluster.conf").read_text())
    assert local == {name: f"127.0.0.1:{info.port}" for name, info in SERVICES.items()}
    assert cluster == {name: f"{name}:{info.port}" for name, info in SERVICES.items()}


def test_cluster_upstreams_name_the_compose_services_and_their_ports() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    cluster = upstreams((GATEWAY / "upstreams" / "cluster.conf").read_text())
    for name, address in cluster.items():
        host, port = address.split(":")
        service = compose["services"][host]
        # The API listens on its DESIGN port unless HTTP_PORT moves it.
        assert str(service.get("environment", {}).get("HTTP_PORT", SERVICES[name].port)) == port
        assert "command" not in service, f"{host} must run the API (the image's CMD)"


def test_cluster_upstreams_name_the_kubernetes_services_and_their_ports(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    cluster = upstreams((GATEWAY / "upstreams" / "cluster.conf").read_text())
    for objects in built.values():
        services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
        for address in cluster.values():
            host, port = address.split(":")
            ports = services[host]["spec"]["ports"]
            assert [p["port"] for p in ports] == [int(port)], host
