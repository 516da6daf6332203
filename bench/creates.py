"""Payment creates per second through the payments HTTP server: a baseline ref's code (main's by
default) against this checkout's, in the same run, on the same database and Razorpay fake.

    python bench/creates.py [--quick] [--baseline REF]

Each variant runs as its own `python -m payments api` process (the baseline from
`git archive REF services/payments/payments`, put first on its PYTHONPATH) with Razorpay as
its contract fake in a process of its own. Every create is `POST /api/payments/create` with an
Idempotency-Key of its own and a distinct order, as a client sends it: the server claims the
key, stores the payment, asks the fake for an order and records it before its 201. Since
issue 16 that is the commerce side's service-scope create, which registers the order in the
statement storing the payment (a user's create of an order already placed costs the same).

Measured for each variant:
- the database conversation of one create: a TCP relay in front of PostgreSQL reads the
  wire protocol and counts round trips (each Sync or simple Query waits for the server) and
  commits (COMMIT, or a writing statement outside a transaction), statement caches warm;
- sustained creates per second from CLIENTS keep-alive connections, in rounds that alternate
  the variants (the machine is shared: compare inside a run), with the CPU of the server
  process and of this database's PostgreSQL backends per create (utime+stime from /proc).

The load generator sends pre-built HTTP/1.1 requests and reads only the status line and the
Content-Length of each answer, as bench/webhooks.py does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import orjson
import uvloop
from _common import (
    BACKEND,
    TICK_MS,
    Connection,
    Request,
    all_processes,
    cmdline,
    median,
    result_line,
    table,
    wait_healthy,
)

from rtmn_shared.migrations import discover, migrate
from rtmn_shared.suite import SERVICES
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
PAYMENTS = SERVICES["payments"]
MIGRATIONS = ROOT / "services" / "payments" / "migrations"
KEY_ID, KEY_SECRET = "rzp_test_bench000001", "rzp_bench_key_secret"  # the fake's own
CLIENTS = 32
USERS = 64
COUNTED = 50

WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
SSL_OR_GSS_REQUEST = (80877103, 80877104)


class WireCounter:
    """A TCP relay in front of PostgreSQL that reads what its clients send: every Sync or simple
    Query is a round trip, every COMMIT or writing statement outside a transaction a commit."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.round_trips = self.commits = 0
        self.log: list[str] = []
        self._server: asyncio.Server | None = None

    def reset(self) -> None:
        self.round_trips = self.commits = 0
        self.log.clear()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        try:
            await asyncio.gather(self._client(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            up_writer.close()

    async def _client(self, reader: asyncio.StreamReader, up: asyncio.StreamWriter) -> None:
        while True:  # the startup packet, after any TLS or GSS request the server turns down
            head = await reader.readexactly(8)
            up.write(head + await reader.readexactly(int.from_bytes(head[:4]) - 8))
            if int.from_bytes(head[4:]) not in SSL_OR_GSS_REQUEST:
                break
        session = Session()
        while True:
            head = await reader.readexactly(5)
            body = await reader.readexactly(int.from_bytes(head[1:]) - 4)
            up.write(head + body)
            ended = session.read(head[:1], body)
            if ended is not None:
                self.round_trips += 1
                self.log.append(ended[0])
                self.commits += ended[1]


@dataclass
class Session:
    """One client connection's prepared statements and transaction, as read off the wire."""

    statements: dict[bytes, str] = field(default_factory=dict)
    current: str = ""
    executed: bool = False
    in_transaction: bool = False

    def read(self, kind: bytes, body: bytes) -> tuple[str, bool] | None:
        """The statement of a round trip that ends here and whether it committed, else None."""
        if kind == b"P":  # Parse: statement name, query text
            name, sql = body.split(b"\0")[:2]
            self.statements[name] = self.current = sql.decode()
        elif kind == b"B":  # Bind: portal name, statement name
            self.current = self.statements.get(body.split(b"\0")[1], "?")
        elif kind == b"E":
            self.executed = True
        elif kind == b"Q":
            return self._ended(body[:-1].decode(), ran=True)
        elif kind == b"S":
            ran, self.executed = self.executed, False
            return self._ended(self.current, ran=ran)  # or only prepared it
        return None

    def _ended(self, sql: str, *, ran: bool) -> tuple[str, bool]:
        word = (sql.split(None, 1) or [""])[0].upper().rstrip(";")
        outside = not self.in_transaction
        if word == "BEGIN":
            self.in_transaction = True
        elif word in ("COMMIT", "ROLLBACK"):
            self.in_transaction = False
        committed = ran and (word == "COMMIT" or (outside and WRITES.search(sql) is not None))
        text = " ".join(sql.split())
        return (text if ran else f"(prepare) {text}")[:110], committed


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()  # the server hung up (after a Terminate): so does the relay, to its client


@dataclass
class Variant:
    name: str
    pythonpath: str | None  # None: this checkout's code
    port: int = 0
    server: asyncio.subprocess.Process | None = None
    round_trips: float = 0.0
    commits: float = 0.0
    statements: list[str] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)  # per create, by process group

    def cpu(self, group: str) -> float:
        return median(self.cpu_ms[group])


def baseline_code(ref: str, into: Path) -> str:
    """The payments package as it is at `ref`, extracted under `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "services/payments/payments"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return str(into / "services" / "payments")


def requests(suite: Suite, variant: Variant) -> Iterator[Request]:
    """Creates as a client sends them: where the variant's code has orders (issue 16), the
    commerce side's service-scope create that registers the order in the statement storing
    its payment; before, a user's create that set the amount itself."""
    orders = (
        (Path(variant.pythonpath or ROOT / "services" / "payments") / "payments")
        .joinpath("order_store.py")
        .exists()
    )
    users = [f"u_bench_{n}" for n in range(USERS)]
    bearers = [suite.bearer(u, "service" if orders else "")["Authorization"] for u in users]
    prefix = uuid.uuid4().hex[:8]
    n = 0
    while True:
        n += 1
        fields = {
            "order_id": f"o_{prefix}_{n}",
            "order_number": f"R{n}",
            "merchant_id": "m_bench",
            "amount": 49_900,
            "currency": "INR",
            "gateway": "razorpay",
        }
        if orders:
            fields["user_id"] = users[n % USERS]
        body = orjson.dumps(fields)
        head = (
            "POST /api/payments/create HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\n"
            f"Authorization: {bearers[n % USERS]}\r\n"
            f"Idempotency-Key: create-{uuid.uuid4().hex}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        yield head.encode() + body


async def start_server(
    variant: Variant, suite: Suite, fake_url: str, database_url: str
) -> asyncio.subprocess.Process:
    variant.port = free_port()
    env = {
        **os.environ,
        **suite.environ(),
        "DATABASE_URL": database_url,
        "HTTP_PORT": str(variant.port),
        "LOG_LEVEL": "WARNING",
        "RAZORPAY_KEY_ID": KEY_ID,
        "RAZORPAY_KEY_SECRET": KEY_SECRET,
        "RAZORPAY_API_BASE": fake_url,
        "CREATE_LIMIT_PER_WINDOW": "1000000000",
        "DB_POOL_SIZE": os.environ.get("BENCH_POOL", "10"),
    }
    if variant.pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [variant.pythonpath, env.get("PYTHONPATH")])
        )
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "payments", "api", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    await wait_healthy(f"http://127.0.0.1:{variant.port}", server, f"payments ({variant.name})")
    return server


async def stop(server: asyncio.subprocess.Process) -> None:
    server.terminate()
    await asyncio.wait_for(server.wait(), 10)


async def count_conversation(
    variant: Variant, suite: Suite, fake_url: str, stream: Iterator[Request]
) -> None:
    """Round trips and commits of one create, through the counting relay, caches warm."""
    wire = WireCounter("127.0.0.1", 5432)
    await wire.start()
    # The relay reads the protocol in the clear: no TLS between it and the server.
    url = f"postgresql://127.0.0.1:{wire.port}/{suite.database}?sslmode=disable"
    server = await start_server(variant, suite, fake_url, url)
    conn = await Connection.open(variant.port)
    try:
        for _ in range(20):
            await conn.post(next(stream), expect=b"201")
        wire.reset()
        for _ in range(COUNTED):
            await conn.post(next(stream), expect=b"201")
        variant.round_trips = wire.round_trips / COUNTED
        variant.commits = wire.commits / COUNTED
        wire.reset()
        await conn.post(next(stream), expect=b"201")
        variant.statements = list(wire.log)
    finally:
        conn.close()
        await stop(server)
        await wire.stop()


CPU_GROUPS = ("server", "PG backends", "Razorpay fake", "load generator")


def cpu_ticks(server: int, fake: int, database: str) -> dict[str, int]:
    """utime+stime of the server, this database's PostgreSQL backends, the fake and this process."""
    ticks = dict.fromkeys(CPU_GROUPS, 0)
    for proc in all_processes():
        if proc.pid in (server, fake, os.getpid()):
            group = {server: "server", fake: "Razorpay fake"}.get(proc.pid, "load generator")
            ticks[group] += proc.ticks
        elif proc.comm.startswith("postgres"):
            backend = BACKEND.match(cmdline(proc.pid))
            if backend is not None and backend[1] == PAYMENTS.role and backend[2] == database:
                ticks["PG backends"] += proc.ticks
    return ticks


async def sustained(
    variant: Variant, stream: Iterator[Request], seconds: float, fake: int, database: str
) -> None:
    assert variant.server is not None
    conns = [await Connection.open(variant.port) for _ in range(CLIENTS)]
    done = 0

    async def worker(conn: Connection, deadline: float) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await conn.post(next(stream), expect=b"201")
            done += 1

    try:
        await asyncio.gather(*(worker(c, time.perf_counter() + 0.5) for c in conns))  # warm-up
        done = 0
        before = cpu_ticks(variant.server.pid, fake, database)
        started = time.perf_counter()
        await asyncio.gather(*(worker(c, started + seconds) for c in conns))
        took = time.perf_counter() - started
        after = cpu_ticks(variant.server.pid, fake, database)
    finally:
        for conn in conns:
            conn.close()
    variant.rates.append(done / took)
    for group in CPU_GROUPS:
        used = (after[group] - before[group]) * TICK_MS / done
        variant.cpu_ms.setdefault(group, []).append(used)


async def main(quick: bool, ref: str) -> None:
    seconds, rounds = (3.0, 3) if quick else (8.0, 5)
    suite = Suite()
    await suite.create()
    fake: asyncio.subprocess.Process | None = None
    with tempfile.TemporaryDirectory(prefix="bench-creates-") as tmp:
        variants = [
            Variant(f"{ref} (baseline)", baseline_code(ref, Path(tmp))),
            Variant("this checkout", None),
        ]
        try:
            conn = await asyncpg.connect(suite.database_url, user=PAYMENTS.owner)
            await migrate(conn, PAYMENTS.schema, discover(MIGRATIONS))
            await conn.close()
            fake = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "rtmn_fakes", "razorpay", "--key-id", KEY_ID,
                "--key-secret", KEY_SECRET, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert fake.stdout is not None
            fake_url = (await fake.stdout.readline()).decode().split()[1]
            streams = {variant.name: requests(suite, variant) for variant in variants}
            for variant in variants:
                await count_conversation(variant, suite, fake_url, streams[variant.name])
            for variant in variants:
                variant.server = await start_server(variant, suite, fake_url, suite.database_url)
            for _ in range(rounds):
                for variant in variants:
                    await sustained(
                        variant, streams[variant.name], seconds, fake.pid, suite.database
                    )
        finally:
            for variant in variants:
                if variant.server is not None:
                    await stop(variant.server)
            if fake is not None:
                await stop(fake)
            await suite.destroy()

    before, after = variants
    rows: list[tuple[str, ...]] = [
        ("code", "round trips", "commits", "creates/s", *(f"{g} ms" for g in CPU_GROUPS))
    ]
    for v in variants:
        rows.append((v.name, f"{v.round_trips:.1f}", f"{v.commits:.1f}", f"{median(v.rates):.0f}",
                     *(f"{v.cpu(g):.2f}" for g in CPU_GROUPS)))  # fmt: skip
    print(table(rows))
    print(
        f"database round trips and commits per create; creates/s and CPU ms per create: medians "
        f"of {rounds} alternating rounds of {seconds:.0f} s, {CLIENTS} clients"
    )
    for v in variants:
        print(f"\none create's database conversation, {v.name}:")
        print("\n".join(f"  {line}" for line in v.statements))
    print(
        result_line(
            "creates",
            "payment creates per second through HTTP, against the baseline ref's code",
            median(after.rates),
            median(before.rates),
            "creates/s",
            server_cpu_ms=after.cpu("server"),
            baseline_server_cpu_ms=before.cpu("server"),
            backends_cpu_ms=after.cpu("PG backends"),
            baseline_backends_cpu_ms=before.cpu("PG backends"),
            round_trips=after.round_trips,
            baseline_round_trips=before.round_trips,
            commits=after.commits,
            baseline_commits=before.commits,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 3 s instead of 5 of 8")
    parser.add_argument("--baseline", default="main", help="the git ref measured as the baseline")
    args = parser.parse_args()
    uvloop.run(main(args.quick, args.baseline))
