"""The whole payment path under a rising load, through the nginx gateway, against its floor.

    python bench/load.py [--quick] [--soak SECONDS]

The payment path's processes (faults_kit.PAYMENT_PATH, from the Procfile) run as `make run`
runs them (rtmn_shared.testing.processes), behind deploy/gateway/nginx.conf on a free port, with
SendGrid, FCM and Razorpay as their contract fakes in one process of their own. Each payment is
created through the gateway (`POST /api/payments/create`, which asks the Razorpay fake for an
order) by a new client from its own loopback address (the gateway limits creates per address),
and captured by a signed `payment.captured` webhook through the gateway, as Razorpay sends it.

1. A warm-up at 20/s (10 s, not counted) fills the pools, and gives the run's shape: events per
   payment are the outbox rows its payments wrote, by type; deliveries, the queues bound to
   those types in the run's vhost; commits and HTTP exchanges are declared (loadkit/shape.py).
2. The floor of that shape (bench/floor.py's measurement, on the run's database and vhost while
   the suite idles): the least CPU its publishes, deliveries, commits and exchanges cost here.
3. The rate rises (20, 30, 40, 50, 65, 80, 100, 125, 150, ...: 8 s a step, --quick 4 s) until
   the p99 from webhook to all three effects (wallet credit, order email, payment push: the
   ledger entry's created_at, the deliveries' sent_at) passes 100 ms, or a request fails.
4. A soak at 80 % of the sustained rate (--soak seconds; 60, --quick 10, the issue's is 600)
   compares each process's memory at its start, half-way and at its end: bounded records
   (analytics' sandbox sinks, the fakes') fill in the first half, so the second half shows a leak.
5. Every process log is scanned for secrets, tokens, OTPs and phone numbers.

CPU is read from /proc over each step and the soak (from its first payment until its last
effect landed) and printed as milliseconds per payment: each supervised process with its
children, nginx, this run's PostgreSQL backends by role, PostgreSQL's background processes and
RabbitMQ's beam.smp (the last two, and the machine's busy time printed below them, are shared
with whatever else runs on the machine). The suite's total is all of them but the load
generator (this process and its own database session) and the fakes (supervised processes named
fake-*), which in production run elsewhere; theirs is printed apart.

The closing JSON line: `value` is the sustained rate (the fastest step within the
p99, 0 if none was); `baseline` is what two cores could carry if the suite cost no more than its
floor (2,000 ms / floor_ms), measured in the same run, so `ratio` is the share of the machine's
reach the suite attains; p50_ms and p99_ms are webhook → all three effects at that step;
`suite_cpu_ms_per_payment` is the suite's CPU per payment at that step and `floor_ms` the floor
of the run's shape on the suite's side (without the clients' side of the create and the webhook
and the providers' side of their exchanges), `floor_ratio` the first over the second. The cost
issue's goal: ≥ 80 payments/s with p99 ≤ 100 ms, load generator and fakes on the same 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlparse

import asyncpg
import uvloop
from floor import Shape, measure
from loadkit import shape
from loadkit.cpu import CpuMeter, CpuUse
from loadkit.report import TARGET_P99_MS, Run, Soak, log_findings, print_report, result
from loadkit.running import Running, progress, running
from loadkit.sampling import Sampler
from loadkit.traffic import Load, Step, effects_of

from rtmn_shared.testing.infra import ADMIN_DSN

RATES = (20.0, 30, 40, 50, 65, 80, 100, 125, 150, 200, 300, 500)
WARM_UP_RATE = 20.0
PACED_SECONDS = 8.0  # the floor at the suite's rate: payments enough for 8 s of each part
# The effects are checked as the administrator: that session is the load generator's.
GENERATOR_ROLE = urlparse(ADMIN_DSN).username or "postgres"


@dataclass(frozen=True)
class Plan:
    rates: tuple[float, ...]
    step_seconds: float
    soak_seconds: float
    warm_up_seconds: float = 10.0
    floor_payments: int = 3_000

    @classmethod
    def of(cls, quick: bool, soak: float | None) -> Plan:
        if quick:
            return cls(RATES, 4.0, 10.0 if soak is None else soak, floor_payments=500)
        return cls(RATES, 8.0, 60.0 if soak is None else soak)


def sustained_rate(steps: list[Step]) -> float:
    """The fastest rate achieved within the p99, or the first step's if none was."""
    passing = [s.achieved for s in steps if s.passed(TARGET_P99_MS)]
    return max(passing, default=steps[0].rate)


@dataclass
class Bench:
    """The running suite, the load on it and what watches it."""

    plan: Plan
    load: Load
    conn: asyncpg.Connection  # the load generator's checks of the effects
    sampler: Sampler
    meter: CpuMeter

    async def step(self, rate: float, seconds: float) -> Step:
        """A step of the load, and the CPU used from its start until its last effect landed."""
        step = Step(rate, seconds)
        start = self.meter.snapshot()
        await self.load.run(step)
        await effects_of(self.conn, step)
        step.cpu = CpuUse.between(start, self.meter.snapshot())
        return step

    async def warm_up(self) -> tuple[dict[str, float], Shape]:
        progress(f"warm-up: {WARM_UP_RATE:.0f} payments/s for {self.plan.warm_up_seconds:.0f} s")
        before = await shape.outbox_rows(self.conn)
        step = await self.step(WARM_UP_RATE, self.plan.warm_up_seconds)
        if not step.sent:
            raise SystemExit(f"no payment of the warm-up went through: {step.errors[:3]}")
        if step.errors:  # the shape is rounded to whole events per payment: a few do no harm
            progress(f"warm-up errors: {step.errors[:3]}")
        events = shape.per_payment(before, await self.settled_outbox_rows(), len(step.sent))
        bound = await asyncio.to_thread(shape.bindings, self.sampler.vhost)
        return events, shape.shape_of(events, bound)

    async def settled_outbox_rows(self) -> Counter[str]:
        """Once no more rows come: an effect's own events (a credit's push) may land later."""
        rows = await shape.outbox_rows(self.conn)
        for _ in range(20):
            await asyncio.sleep(0.5)
            again = await shape.outbox_rows(self.conn)
            if again == rows:
                break
            rows = again
        return rows

    async def climb(self) -> list[Step]:
        steps = []
        for rate in self.plan.rates:
            progress(f"{rate:.0f} payments/s for {self.plan.step_seconds:.0f} s")
            step = await self.step(rate, self.plan.step_seconds)
            steps.append(step)
            if not step.passed(TARGET_P99_MS):
                progress(f"stopping: p99 {step.p99_all():.0f} ms, errors {step.errors[:3]}")
                break
        return steps

    async def soak(self, steps: list[Step]) -> Soak:
        rate = max(WARM_UP_RATE, 0.8 * sustained_rate(steps))
        seconds = self.plan.soak_seconds
        progress(f"soak: {rate:.0f} payments/s for {seconds:.0f} s")
        begin = self.sampler.now()
        step = await self.step(rate, seconds)
        memory = self.sampler
        return Soak(
            step, memory.rss_at(begin + 2), memory.rss_at(begin + seconds / 2), memory.memory[-1][1]
        )


async def drive(plan: Plan, up: Running) -> Run:
    users = await up.register_users()
    commerce = up.suite.token("commerce", "service", ttl_seconds=6 * 3600)
    load = Load(up.gateway.port, up.fakes.webhook_secret, [u.user_id for u in users], commerce)
    conn = await asyncpg.connect(ADMIN_DSN, database=up.suite.database)
    sampler = Sampler(up.processes, up.suite.amqp_url, up.suite.vhost)
    sampler.start()
    meter = CpuMeter.of(up.processes, up.gateway, up.suite.database, GENERATOR_ROLE)
    watched = Bench(plan, load, conn, sampler, meter)
    try:
        events, run_shape = await watched.warm_up()
        # bench/floor.py's measurement, on the run's database and vhost while the suite idles.
        costs = await measure(up.suite, [run_shape], plan.floor_payments)
        steps = await watched.climb()
        # The same floor at the rate the suite sustained: nothing batches there as it does flat
        # out, so this is what the infrastructure alone costs at the suite's pace.
        rate = sustained_rate(steps)
        progress(f"the floor at {rate:.0f} payments/s")
        at_rate = await measure(
            up.suite, [run_shape], min(plan.floor_payments, round(rate * PACED_SECONDS)), rate
        )
        soak = await watched.soak(steps) if plan.soak_seconds > 0 else None
    finally:
        await sampler.stop()
        load.close()
        await conn.close()
    return Run(steps, soak, sampler, events, run_shape, costs, at_rate)


async def main(plan: Plan) -> None:
    # Stopped with SIGTERM (or SIGINT), the run unwinds: the suite's processes, the gateway, the
    # run's database and vhost go with it instead of being left behind.
    task, loop = asyncio.current_task(), asyncio.get_running_loop()
    assert task is not None
    for stop in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop, task.cancel)
    async with running() as up:
        run = await drive(plan, up)
    findings = log_findings(up.logs, up.fakes.secrets())
    print_report(run, up.logs, findings)
    print(result(run, findings))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="4 s steps, a 10 s soak, a 500-payment floor"
    )
    parser.add_argument("--soak", type=float, default=None, help="soak seconds (default 60)")
    args = parser.parse_args()
    try:
        uvloop.run(main(Plan.of(args.quick, args.soak)))
    except asyncio.CancelledError:
        raise SystemExit("load: stopped; its processes, database and vhost are gone") from None
