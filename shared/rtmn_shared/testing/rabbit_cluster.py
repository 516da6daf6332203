"""Three RabbitMQ nodes of the machine's own installation (Debian's rabbitmq-server), clustered
with `rabbitmqctl join_cluster`, on ports and data directories of their own: for tests that
kill, restart or cut off a node, without touching the machine's main node (`rabbit@localhost`
on 5672/25672, /var/lib/rabbitmq, /etc/rabbitmq).

Each node runs as the `rabbitmq` user with its HOME, so it shares the main node's Erlang cookie
and the package's `rabbitmqctl` (which switches to that user) reaches it with `-n`. Its own
config file enables no plugin (no management or Prometheus port to collide with) and sets
`cluster_partition_handling = pause_minority`, as the Cluster Operator's defaults do.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rtmn_shared.testing.processes import end_group

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
CONFIG = """\
listeners.tcp.1 = 127.0.0.1:{port}
cluster_partition_handling = pause_minority
log.console = true
log.console.level = warning
log.file.level = info
"""
# Distribution ticks every 15 s by default (net_ticktime 60): a cut-off node is noticed in
# seconds here, so a partition and its healing fit in a test.
ADVANCED = "[{kernel, [{net_ticktime, 8}]}].\n"


@dataclass
class Node:
    name: str  # rtmn-c1@localhost
    port: int  # AMQP
    dist_port: int
    home: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def environ(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/var/lib/rabbitmq",  # its Erlang cookie, shared with rabbitmqctl
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.home / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.home / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.home / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(self.home / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }


@dataclass
class RabbitCluster:
    nodes: list[Node]
    work: Path
    started: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, prefix: str, ports: tuple[int, ...] = (5681, 5682, 5683)) -> RabbitCluster:
        """Started and joined; `stop()` always, even when this raises."""
        work = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
        shutil.chown(work, "rabbitmq", "rabbitmq")
        nodes = [
            Node(f"{prefix}-{n}@localhost", port, port + 20_000, work / f"node{n}")
            for n, port in enumerate(ports, start=1)
        ]
        cluster = cls(nodes, work)
        try:
            cluster._form()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _form(self) -> None:
        for node in self.nodes:
            node.home.mkdir()
            (node.home / "rabbitmq.conf").write_text(CONFIG.format(port=node.port))
            (node.home / "advanced.config").write_text(ADVANCED)
            (node.home / "enabled_plugins").write_text("[].\n")
            (node.home / "rabbitmq-env.conf").write_text("")
            for path in (node.home, *node.home.iterdir()):
                shutil.chown(path, "rabbitmq", "rabbitmq")
        for node in self.nodes:
            self.start(node)
        for node in self.nodes:
            self.wait_started(node)
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", self.nodes[0].name)
            self.ctl(node, "start_app")
        self.wait_running(len(self.nodes))

    @property
    def admin_url(self) -> str:
        """guest (loopback only), every node listed."""
        return ",".join(f"amqp://guest:guest@{n.address}/" for n in self.nodes)

    def start(self, node: Node) -> None:
        with (node.home / "console.log").open("ab") as out:
            node.process = subprocess.Popen(  # noqa: S603
                [
                    "/usr/bin/setpriv",
                    "--reuid=rabbitmq",
                    "--regid=rabbitmq",
                    "--init-groups",
                    str(RABBITMQ_BIN / "rabbitmq-server"),
                ],
                cwd=node.home,
                env=node.environ(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started[node.name] = time.monotonic()

    def wait_started(self, node: Node, timeout: float = 180) -> None:
        """Until the node's app runs; `await_startup` alone fails before epmd knows the node."""
        deadline = time.monotonic() + timeout
        while True:
            if node.process is None or node.process.poll() is not None:
                log = (node.home / "console.log").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"{node.name} exited:\n{log}")
            try:
                self.ctl(node, "await_startup", "--timeout", "30", timeout=60)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def kill(self, node: Node) -> None:
        """SIGKILL, as a crashed pod: no goodbye to clients or peers."""
        if node.process is not None:
            end_group(node.process, signal.SIGKILL, timeout=10)
            node.process = None

    def wait_running(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while len(seen) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"cluster has {seen} running, not {count}")
            time.sleep(0.5)
            with contextlib.suppress(RuntimeError):  # the asked node may be starting itself
                seen = self.running()

    def running(self, via: Node | None = None) -> list[str]:
        status = json.loads(
            self.ctl(via or self.live()[0], "cluster_status", "--formatter", "json")
        )
        return list(status.get("running_nodes", []))

    def cut_off(self, node: Node) -> None:
        """A network partition of `node`: it presents a wrong cookie to each peer (and refuses
        theirs) and drops its links; rabbitmqctl, with the right one, still reaches it."""
        peers = "[" + ",".join(f"'{n.name}'" for n in self.nodes if n is not node) + "]"
        self.ctl(
            node,
            "eval",
            f"[begin erlang:set_cookie(P, rtmn_partitioned), erlang:disconnect_node(P) end"
            f" || P <- {peers}], ok.",
        )

    def heal(self, node: Node) -> None:
        peers = "[" + ",".join(f"'{n.name}'" for n in self.nodes if n is not node) + "]"
        self.ctl(
            node,
            "eval",
            f"[begin erlang:set_cookie(P, erlang:get_cookie()), net_adm:ping(P) end"
            f" || P <- {peers}], ok.",
        )

    def leader(self, vhost: str, queue: str) -> Node:
        """The node leading the quorum queue's Raft group."""
        listed = json.loads(
            self.ctl(
                self.live()[0], "list_queues", "-p", vhost, "name", "leader", "--formatter", "json"
            )
        )
        name = next(q["leader"] for q in listed if q["name"] == queue)
        return next(n for n in self.nodes if n.name == name)

    def members(self, vhost: str) -> dict[str, list[str]]:
        listed = json.loads(
            self.ctl(
                self.live()[0],
                "list_queues",
                "-p",
                vhost,
                "name",
                "members",
                "--formatter",
                "json",
            )
        )
        return {q["name"]: sorted(q["members"] or []) for q in listed}

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def ctl(self, node: Node, *args: str, timeout: float = 120) -> str:
        """The package's rabbitmqctl against `node` (it runs as `rabbitmq`, with the cookie)."""
        done = subprocess.run(  # noqa: S603
            ["rabbitmqctl", "-q", "-n", node.name, *args],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl -n {node.name} {args[0]}: {done.stderr.strip()}")
        return done.stdout

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None:
                end_group(node.process, signal.SIGTERM, timeout=30)
                node.process = None
        shutil.rmtree(self.work, ignore_errors=True)
