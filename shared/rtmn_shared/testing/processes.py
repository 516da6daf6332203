"""The suite's processes started one by one, as `make run` starts them, but supervised here.

honcho stops every process when one dies; fault tests need to SIGKILL one process and start it
again while the others go on, and the load bench needs each process's memory. A `Supervisor`
starts Procfile entries itself, each on ports of its own (so it never collides with `make run`
or the end-to-end tests) and with its output in a log file of its own, which the log scanner
reads afterwards. `Gateway` runs deploy/gateway/nginx.conf on a free port in front of them.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from rtmn_shared.suite import SERVICES

# What each kind of process logs once it is serving (rtmn_shared.entry, events.consumer).
READY_LINES = {"relay": "relay started", "consumers": "consuming "}


ALIASES = {"worker": ("relay", "consumers"), "all": ("api", "relay", "consumers")}


@dataclass(frozen=True)
class ProcessSpec:
    """One Procfile entry: `wallet: .venv/bin/python -m wallet api relay consumers`."""

    name: str
    argv: tuple[str, ...]
    ready_line: str | None = None  # what it prints once serving, when it is no service's

    @property
    def roles(self) -> tuple[str, ...]:
        """The service roles it runs (api, relay, consumers); none for others (the gateway)."""
        if len(self.argv) >= 4 and self.argv[1] == "-m" and self.argv[2] in SERVICES:
            return tuple(r for name in self.argv[3:] for r in ALIASES.get(name, (name,)))
        return ()

    @property
    def service(self) -> str | None:
        return self.argv[2] if self.roles else None


def procfile(path: Path) -> dict[str, ProcessSpec]:
    specs: dict[str, ProcessSpec] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, command = line.partition(":")
        specs[name.strip()] = ProcessSpec(name.strip(), tuple(shlex.split(command)))
    return specs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Running:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    log: Path
    log_offset: int  # where this start's output begins in the (appended) log
    port: int | None
    started: float = field(default_factory=time.monotonic)


def end_group(
    process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM, timeout: float = 20
) -> int:
    """Sends `sig` to the process's group (started with start_new_session) and waits for it to
    end, SIGKILLing the group after `timeout`; returns its exit code."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait(timeout=10)


class Supervisor:
    """Starts, kills and restarts single processes of the suite; one log file per process."""

    def __init__(
        self, root: Path, env: Mapping[str, str], logs: Path, specs: Mapping[str, ProcessSpec]
    ) -> None:
        self.root = root
        self.env = dict(env)
        self.logs = logs
        self.specs = dict(specs)
        self.ports: dict[str, int] = {}  # API processes' HTTP ports, kept across restarts
        self.running: dict[str, Running] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def api_addresses(self, service: str) -> list[str]:
        """host:port of each of the service's API processes (a second one is `<service>-...`)."""
        return [
            f"127.0.0.1:{self.ports[_port_key(spec)]}"
            for spec in self.specs.values()
            if spec.service == service and "api" in spec.roles and _port_key(spec) in self.ports
        ]

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def start(self, name: str) -> None:
        if name in self.running and self.running[name].process.poll() is None:
            raise RuntimeError(f"{name} is already running")
        spec = self.specs[name]
        env = {**os.environ, **self.env}
        port = None
        if "api" in spec.roles and spec.service is not None:
            port = self.ports.setdefault(_port_key(spec), free_port())
            env["HTTP_PORT"] = str(port)
        log = self.log_path(name)
        offset = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 - argv from our own Procfile
                spec.argv,
                cwd=self.root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[name] = Running(spec, process, log, offset, port)

    def start_all(self, names: Iterable[str]) -> None:
        for name in names:
            self.start(name)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL, timeout: float = 30) -> int:
        """Sends `sig` to the process and waits for it to end; returns its exit code."""
        return end_group(self.running[name].process, sig, timeout)

    def stop_all(self, timeout: float = 20) -> None:
        alive = [r for r in self.running.values() if r.process.poll() is None]
        for run in alive:
            os.killpg(run.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for run in alive:
            try:
                run.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(run.process.pid, signal.SIGKILL)
                run.process.wait(timeout=10)

    def dead(self) -> list[str]:
        """Processes that exited although nobody stopped them."""
        return [name for name, run in self.running.items() if run.process.poll() is not None]

    def pid(self, name: str) -> int:
        return self.running[name].process.pid

    def rss_bytes(self, name: str) -> int:
        """Resident memory of the process now (0 once it has exited)."""
        try:
            status = Path(f"/proc/{self.pid(name)}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def output(self, name: str) -> str:
        """What the current run of `name` has written so far."""
        run = self.running[name]
        with run.log.open("rb") as log:
            log.seek(run.log_offset)
            return log.read().decode(errors="replace")

    async def wait_ready(self, names: Iterable[str], timeout: float = 120) -> None:  # noqa: ASYNC109
        """Until every API answers /readyz and every relay and consumer says it is serving."""
        pending = set(names)
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while pending:
                for name in list(pending):
                    if self._lost_its_port(name):
                        continue
                    if self.running[name].process.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with {self.running[name].process.returncode}; "
                            f"see {self.log_path(name)}:\n{self.output(name)[-2000:]}"
                        )
                    if await self._ready(http, name):
                        pending.discard(name)
                if not pending:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"not ready after {timeout}s: {sorted(pending)}")
                await asyncio.sleep(0.1)

    def _lost_its_port(self, name: str) -> bool:
        """A free port can be taken by someone else before the API binds it: start it again
        on another one."""
        run = self.running[name]
        if run.port is None or run.process.poll() is None:
            return False
        if "address already in use" not in self.output(name):
            return False
        self.ports[_port_key(run.spec)] = free_port()
        self.start(name)
        return True

    async def _ready(self, http: aiohttp.ClientSession, name: str) -> bool:
        run = self.running[name]
        markers = [READY_LINES[r] for r in run.spec.roles if r in READY_LINES]
        if run.spec.ready_line is not None:
            markers.append(run.spec.ready_line)
        output = self.output(name) if markers else ""
        if not all(marker in output for marker in markers):
            return False
        if run.port is None:
            return True
        try:
            async with http.get(f"http://127.0.0.1:{run.port}/readyz") as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False


class Gateway:
    """deploy/gateway/nginx.conf on a port of its own, in front of a Supervisor's APIs."""

    def __init__(self, root: Path, work: Path, upstreams: Mapping[str, str], port: int) -> None:
        self.root, self.work, self.port = root, work, port
        self.upstreams = dict(upstreams)  # service -> host:port[,host:port...]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.work / "gateway.log"

    async def front(self, processes: Supervisor, names: Sequence[str]) -> None:
        """Starts `names`, and once each is ready, this gateway in front of their APIs."""
        processes.start_all(names)
        await processes.wait_ready(names)
        self.upstreams = {
            name: ",".join(processes.api_addresses(name)) or f"127.0.0.1:{free_port()}"
            for name in SERVICES
        }
        self.start()
        await self.wait_ready()

    def start(self) -> None:
        (self.work / "tmp").mkdir(parents=True, exist_ok=True)
        config = (self.root / "deploy/gateway/nginx.conf").read_text()
        listen = "listen 8080 "
        if listen not in config:
            raise RuntimeError("deploy/gateway/nginx.conf no longer listens on 8080")
        (self.work / "nginx.conf").write_text(config.replace(listen, f"listen {self.port} "))
        (self.work / "upstreams.conf").write_text(
            "".join(
                f"upstream {name} {{\n"
                + "".join(f"    server {a} max_fails=0;\n" for a in addresses.split(","))
                + "    keepalive 32;\n}\n"
                for name, addresses in self.upstreams.items()
            )
        )
        with self.log.open("ab") as out:
            command = ["nginx", "-p", str(self.work), "-c", str(self.work / "nginx.conf")]
            self.process = subprocess.Popen(  # noqa: S603
                [*command, "-g", "daemon off;"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, timeout: float = 30) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while True:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"nginx exited; see {self.log}")
                try:
                    async with http.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the gateway did not answer on {self.url}")
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            end_group(self.process, timeout=10)


def _port_key(spec: ProcessSpec) -> str:
    """An API process's port is kept under its service's name, or its own for a second one."""
    assert spec.service is not None
    return spec.service if spec.name == spec.service else spec.name
