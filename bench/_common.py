"""What every benchmark shares: percentiles, the table, the closing JSON line, a server's start.

A benchmark is run as a script, so bench/ comes first on its path: a benchmark of one service is
named `<service>_bench.py`, never like the package it measures, which it would hide.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp

from rtmn_shared.events.catalogue import PaymentSuccess


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def result_line(
    bench: str, metric: str, value: float, baseline: float, unit: str, **extra: Any
) -> str:
    body = {
        "bench": bench,
        "metric": metric,
        "value": round(value, 2),
        "baseline": round(baseline, 2),
        "ratio": round(value / baseline, 3) if baseline else None,
        "unit": unit,
    }
    body.update({k: round(v, 2) if isinstance(v, float) else v for k, v in extra.items()})
    return json.dumps(body)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


async def wait_healthy(
    base: str,
    server: asyncio.subprocess.Process,
    name: str,
    timeout: float = 20.0,  # noqa: ASYNC109
) -> None:
    """Until the server under test answers /healthz; fails loudly if it exits or never does."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(base) as http:
        while time.monotonic() < deadline:
            if server.returncode is not None:
                raise SystemExit(f"the {name} server exited with {server.returncode}")
            try:
                async with http.get("/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit(f"the {name} server did not start")


def sample_payment(n: int) -> PaymentSuccess:
    """The n-th of a stream of distinct payment.success events, spread over 97 users."""
    return PaymentSuccess(
        payment_id=f"pay_{n}",
        order_id=f"ord_{n}",
        order_number=f"R{n}",
        user_id=f"u{n % 97}",
        merchant_id="m1",
        amount=49_900,
        currency="INR",
        gateway="razorpay",
        gateway_payment_id=f"rzp_{n}",
        paid_at=datetime.now(UTC),
    )


# -------------------------------------------------------------- CPU from /proc ----

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
# "postgres: 15/main: rtmn_wallet rtmn_test_1a2b 127.0.0.1(5432) idle": role, then database.
BACKEND = re.compile(r"postgres: (?:[^:\s]+: )?(\S+) (\S+) (?:\S+\(\d+\)|\[local\])")


class Proc(NamedTuple):
    pid: int
    ppid: int
    session: int
    comm: str
    ticks: int  # utime + stime


def read_proc(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # it ended between the listing and the read
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return Proc(pid, int(fields[1]), int(fields[3]), comm, int(fields[11]) + int(fields[12]))


def all_processes() -> list[Proc]:
    return [p for d in Path("/proc").iterdir() if d.name.isdigit() if (p := read_proc(int(d.name)))]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


Request = bytes  # a whole HTTP/1.1 request, headers and body


class Connection:
    """One keep-alive connection to a local server, one request at a time, as lean as a client
    gets, so that what is measured is the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, request: Request, expect: bytes = b"200") -> None:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        start = head.lower().index(b"content-length:") + 15
        body = await self.reader.readexactly(int(head[start : head.index(b"\r\n", start)]))
        if head[9:12] != expect:
            raise RuntimeError(f"answered {head[9:12].decode()}: {body[:300]!r}")

    def close(self) -> None:
        self.writer.close()
