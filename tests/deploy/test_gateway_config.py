"""The gateway's nginx configuration passes `nginx -t` and its upstreams match the deployments."""

from __future__ import annotations

import asyncio
import re
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from notify.providers.sendgrid.webhooks import SENDGRID_MAX_BODY_BYTES
from payments import webhooks as payments_webhooks
from rtmn_shared.settings import CommonSettings
from rtmn_shared.suite import SERVICES
from rtmn_shared.testing.processes import free_port
from rtmn_shared.testing.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "deploy" / "gateway"
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


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


def _client_key_of(address: str, port: int) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/", timeout=2) as response:
            body: bytes = response.read()
            return body
    except OSError:
        return None


async def test_limits_count_an_ipv4_address_or_an_ipv6_slash_64(tmp_path: Path) -> None:
    # The gateway's own map, served back as the body: what every limit_req_zone keys on.
    conf = (GATEWAY / "nginx.conf").read_text()
    found = re.search(r"    map \$binary_remote_addr \$rtmn_client \{.*?\n    \}\n", conf, re.S)
    assert found is not None
    assert set(re.findall(r"limit_req_zone (\S+)", conf)) == {"$rtmn_client"}
    port = free_port()
    temp = " ".join(f"{kind}_temp_path tmp;" for kind in TEMP_PATHS)
    (tmp_path / "tmp").mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"pid nginx.pid; error_log stderr warn; events {{}}\n"
        f"http {{ {temp} access_log off;\n{found.group(0)}\n"
        f"server {{ listen 127.0.0.1:{port}; listen [::1]:{port};"
        f" location / {{ return 200 $rtmn_client; }} }} }}\n"
    )
    nginx = await asyncio.create_subprocess_exec(
        "nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"
    )
    try:
        v4 = await wait_for(lambda: _client_key_of("127.0.0.1", port), message="nginx")
        v6 = await wait_for(lambda: _client_key_of("[::1]", port), message="nginx on ::1")
    finally:
        nginx.terminate()
        await asyncio.wait_for(nginx.wait(), 10)
    assert v4 == bytes([127, 0, 0, 1])
    assert v6 == bytes(8)  # ::1's /64: its first 8 bytes, so ::2 ... ::ffff share one budget


def _size(value: str) -> int:
    units = {"k": 1024, "m": 1024 * 1024}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


def body_caps(conf: str) -> dict[str, int]:
    """{location pattern: its client_max_body_size in bytes}, and "" for the server-wide one."""
    caps = {"": _size(re.findall(r"^    client_max_body_size (\S+);", conf, re.M)[0])}
    for pattern, block in re.findall(r"location\s+([^{]+?)\s*\{([^}]*)\}", conf):
        found = re.search(r"client_max_body_size (\S+);", block)
        if found:
            caps[pattern] = _size(found.group(1))
    return caps


def test_webhook_body_caps_are_the_same_in_nginx_and_the_services() -> None:
    caps = body_caps((GATEWAY / "nginx.conf").read_text())
    assert caps[r"~ ^/api/webhooks/(razorpay|stripe)$"] == payments_webhooks.MAX_BODY_BYTES
    assert caps["= /api/webhooks/sendgrid"] == SENDGRID_MAX_BODY_BYTES
    # SendGrid posts a batch once it reaches 768 KB, so a full one (and one more event) fits.
    assert SENDGRID_MAX_BODY_BYTES >= 768 * 1024 + 64 * 1024
    assert caps[""] == CommonSettings.model_fields["max_body_bytes"].default
