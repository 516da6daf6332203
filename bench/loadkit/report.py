"""What bench/load.py prints: its tables, and the closing JSON line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from _common import percentile, result_line, table
from floor import CORES_MS, Costs, Shape
from logscan import scan

from loadkit.cpu import is_suite
from loadkit.sampling import Sampler
from loadkit.traffic import Step

TARGET_RATE = 80.0  # the cost issue's goal, with the load generator and the fakes on the machine
TARGET_P99_MS = 100.0


@dataclass
class Soak:
    step: Step
    rss_start: dict[str, int]
    rss_middle: dict[str, int]
    rss_end: dict[str, int]


@dataclass
class Run:
    steps: list[Step]
    soak: Soak | None
    sampler: Sampler
    events: dict[str, float]  # outbox rows per payment, by type
    shape: Shape
    costs: Costs  # flat out
    costs_at_rate: Costs  # paced at the sustained rate

    @property
    def passing(self) -> list[Step]:
        return [s for s in self.steps if s.passed(TARGET_P99_MS)]

    @property
    def sustained(self) -> Step:
        """The fastest step that held the p99, or the first if none did."""
        return max(self.passing, key=lambda s: s.achieved, default=self.steps[0])

    @property
    def measured(self) -> dict[str, Step]:
        """Every step and the soak that has CPU accounted, by a label of its own."""
        labelled = [(f"{s.rate:.0f}/s", s) for s in self.steps]
        if self.soak is not None:
            labelled.append((f"soak {self.soak.step.rate:.0f}/s", self.soak.step))
        return {label: s for label, s in labelled if s.cpu is not None and s.sent}


# ------------------------------------------------------------------------- tables ----

HEAD = (
    "rate/s",
    "achieved",
    "create p50/p99 ms",
    "webhook p50/p99",
    "→wallet p50/p99",
    "→email p50/p99",
    "→push p50/p99",
    "→all three p50/p99",
    "errors",
)


def step_row(step: Step) -> tuple[str, ...]:
    def ms(values: list[float]) -> str:
        return f"{percentile(values, 50):.0f}/{percentile(values, 99):.0f}"

    e2e = step.e2e
    return (
        f"{step.rate:.0f}",
        f"{step.achieved:.0f}",
        ms(step.create_ms),
        ms(step.webhook_ms),
        *(ms(e2e.get(effect, [])) for effect in ("wallet", "email", "push", "all")),
        str(len(step.errors)),
    )


def floor_lines(run: Run) -> str:
    shape, costs = run.shape, run.costs
    events = ", ".join(f"{kind} ×{n:g}" for kind, n in run.events.items())
    floor = costs.suite_side_ms(shape)
    return (
        f"the run's shape: {events} per payment (outbox rows); {shape.deliveries} deliveries "
        f"to {len(shape.queues)} queues (bindings); {shape.commits} commits and "
        f"{shape.exchanges} HTTP exchanges (declared)\n"
        f"its floor: {costs.floor_ms(shape):.2f} ms a payment, {floor:.2f} ms of it on the "
        f"suite's side (no load generator, no providers): at most {CORES_MS / floor:.0f}/s\n"
        f"the same paced at the sustained rate: {run.costs_at_rate.suite_side_ms(shape):.2f} ms "
        "on the suite's side (nothing batches at that pace as it does flat out)"
    )


def cpu_rows(steps: dict[str, Step]) -> list[tuple[str, ...]]:
    """CPU ms per payment of each group, the suite's first (costliest in the last step first),
    then the load generator's and the fakes'."""
    measured = [(s, s.cpu) for s in steps.values() if s.cpu is not None]
    last = measured[-1][1]
    groups = sorted({g for _, cpu in measured for g in cpu.ms}, key=lambda g: -last.ms.get(g, 0))
    rows = [("CPU ms per payment", *steps)]
    for suite in (True, False):
        for group in (g for g in groups if is_suite(g) == suite):
            rows.append((group, *(f"{s.per_payment(c.ms.get(group, 0)):.2f}" for s, c in measured)))
        name, total = (
            ("suite total", "suite_ms") if suite else ("load generator + fakes", "others_ms")
        )
        rows.append(
            (f"= {name}", *(f"{s.per_payment(getattr(c, total)):.2f}" for s, c in measured))
        )
    rows.append(("machine busy*", *(f"{s.per_payment(c.machine_ms):.2f}" for s, c in measured)))
    rows.append(
        ("cores busy (all above)", *(f"{c.total_ms / c.seconds / 1000:.2f}" for _, c in measured))
    )
    return rows


def memory_rows(run: Run) -> list[tuple[str, ...]]:
    memory = run.sampler.memory
    soak = run.soak
    marks = [
        memory[0][1],
        *((soak.rss_start, soak.rss_middle, soak.rss_end) if soak else ({},) * 3),
    ]
    rows: list[tuple[str, ...]] = [
        ("process", "RSS first MB", "soak start MB", "soak middle MB", "soak end MB", "peak MB")
    ]
    for name in run.sampler.names:
        peak = max(m.get(name, 0) for _, m in memory)
        rows.append((name, *(megabytes(m.get(name)) for m in marks), megabytes(peak)))
    return rows


def megabytes(rss: int | None) -> str:
    return "-" if rss is None else f"{rss / 2**20:.0f}"


def broker_lines(sampler: Sampler) -> str:
    deepest: dict[str, int] = {}
    for _, depths in sampler.depths:
        for queue, depth in depths.items():
            deepest[queue] = max(deepest.get(queue, 0), depth)
    timeline = " ".join(f"{t:.0f}s:{sum(d.values())}" for t, d in sampler.depths[::5])
    return (
        f"broker: deepest queues {sorted(deepest.items(), key=lambda kv: -kv[1])[:4]}\n"
        f"broker: ready messages in all queues over time {timeline}"
    )


def log_findings(logs: Path, secrets: list[str]) -> dict[str, list[str]]:
    findings = {}
    for path in sorted(logs.rglob("*.log")):
        found = scan(path.read_text(errors="replace"), secrets)
        if found:
            findings[path.name] = [str(f) for f in found[:3]]
    return findings


def print_report(run: Run, logs: Path, findings: dict[str, list[str]]) -> None:
    print(floor_lines(run))
    print()
    print(table([HEAD, *(step_row(s) for s in run.steps)]))
    if run.soak is not None:
        soak = run.soak.step
        print(f"\nsoak at {soak.rate:.0f}/s for {soak.seconds:.0f} s:")
        print(table([HEAD, step_row(soak)]))
    print()
    print(table(cpu_rows(run.measured)))
    print("(* shared with everything else running on the machine)")
    print()
    print(table(memory_rows(run)))
    print()
    print(broker_lines(run.sampler))
    print(f"log scan of {len(list(logs.rglob('*.log')))} logs in {logs}: {findings or 'nothing'}")


# ---------------------------------------------------------------------- JSON line ----


def growth(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    """Each process's RSS growth in MB between two samples."""
    return {n: round((after.get(n, 0) - before.get(n, 0)) / 2**20, 1) for n in after}


def result(run: Run, findings: dict[str, list[str]]) -> str:
    """value: the sustained rate; baseline: the most the floor of the run's shape lets two cores
    carry, with only the suite's side of it on them (measured in the same run)."""
    best = run.sustained
    assert best.cpu is not None
    value = best.achieved if run.passing else 0.0
    floor_ms = run.costs.suite_side_ms(run.shape)
    floor_at_rate_ms = run.costs_at_rate.suite_side_ms(run.shape)
    suite_ms = best.per_payment(best.cpu.suite_ms)
    soak = run.soak
    return result_line(
        "load",
        "sustained_payments_per_s",
        value,
        CORES_MS / floor_ms,
        "payments/s",
        p50_ms=percentile(best.e2e.get("all", []), 50),
        p99_ms=best.p99_all(),
        suite_cpu_ms_per_payment=suite_ms,
        floor_ms=floor_ms,
        floor_ratio=suite_ms / floor_ms,
        floor_at_rate_ms=floor_at_rate_ms,
        floor_at_rate_ratio=suite_ms / floor_at_rate_ms,
        generator_and_fakes_cpu_ms_per_payment=best.per_payment(best.cpu.others_ms),
        target_payments_per_s=TARGET_RATE,
        target_p99_ms=TARGET_P99_MS,
        shape={
            "events": run.events,
            "deliveries": run.shape.deliveries,
            "commits": run.shape.commits,
            "exchanges": run.shape.exchanges,
        },
        at_rate=best.rate,
        stopped_at=run.steps[-1].rate,
        cpu_ms_per_payment={
            g: round(best.per_payment(ms), 2)
            for g, ms in sorted(best.cpu.ms.items(), key=lambda kv: -kv[1])
        },
        suite_cpu_ms_per_payment_by_step={
            label: round(s.per_payment(s.cpu.suite_ms), 2)
            for label, s in run.measured.items()
            if s.cpu is not None
        },
        soak_seconds=soak.step.seconds if soak else 0,
        soak_rss_growth_mb=growth(soak.rss_start, soak.rss_end) if soak else None,
        # Bounded records (analytics' sandbox sinks, the fakes') fill in the first half.
        soak_rss_growth_second_half_mb=growth(soak.rss_middle, soak.rss_end) if soak else None,
        log_findings=sum(len(v) for v in findings.values()),
    )
