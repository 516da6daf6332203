"""CPU time by group of processes, read from /proc, and which groups are the suite's.

A group is a supervised process with its children (named as the Supervisor names it, so one
process per role and one per service are accounted alike), nginx with its workers, this run's
PostgreSQL backends by role, PostgreSQL's background processes, RabbitMQ's beam.smp, or this
process. The suite is every group but the load generator (this process and its own database
session) and the providers' fakes: in production those run elsewhere.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import BACKEND, TICK_MS, Proc, all_processes, cmdline

from loadkit.fakes import FAKE_PREFIX
from rtmn_shared.testing.processes import Gateway, Supervisor

GENERATOR = "load generator"
GENERATOR_DATABASE = "load generator's postgres"  # its checks of the effects
GATEWAY = "gateway (nginx)"
PG_BACKGROUND = "postgres background*"
RABBITMQ = "rabbitmq beam*"


def is_suite(group: str) -> bool:
    return group not in (GENERATOR, GENERATOR_DATABASE) and not group.startswith(FAKE_PREFIX)


def machine_busy_ticks() -> int:
    """All cores' non-idle time since boot: /proc/stat's first line less idle and iowait."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return sum(values) - values[3] - values[4]


@dataclass
class CpuSnapshot:
    ticks: dict[int, tuple[str, int]]  # pid -> (group, utime + stime)
    machine: int
    at: float = field(default_factory=time.monotonic)


class CpuMeter:
    def __init__(self, sessions: dict[int, str], database: str, generator_role: str) -> None:
        self.sessions = sessions  # pid leading a process's session -> its group
        self.database = database
        self.generator_role = generator_role  # the role this process's own session logs in as

    @classmethod
    def of(
        cls, processes: Supervisor, gateway: Gateway, database: str, generator_role: str
    ) -> CpuMeter:
        sessions = {processes.pid(name): name for name in processes.running}
        if gateway.process is not None:
            sessions[gateway.process.pid] = GATEWAY
        return cls(sessions, database, generator_role)

    def snapshot(self) -> CpuSnapshot:
        ticks: dict[int, tuple[str, int]] = {}
        postgres: list[Proc] = []
        for proc in all_processes():
            if proc.session in self.sessions:
                ticks[proc.pid] = (self.sessions[proc.session], proc.ticks)
            elif proc.pid == os.getpid():
                ticks[proc.pid] = (GENERATOR, proc.ticks)
            elif proc.comm == "beam.smp":
                ticks[proc.pid] = (RABBITMQ, proc.ticks)
            elif proc.comm == "postgres":
                postgres.append(proc)
        postmasters = set()
        for proc in postgres:
            backend = BACKEND.match(cmdline(proc.pid))
            if backend and backend[2] == self.database:
                role = backend[1]
                group = GENERATOR_DATABASE if role == self.generator_role else f"postgres {role}"
                ticks[proc.pid] = (group, proc.ticks)
                postmasters.add(proc.ppid)
        for proc in postgres:
            if proc.ppid in postmasters and not BACKEND.match(cmdline(proc.pid)):
                ticks[proc.pid] = (PG_BACKGROUND, proc.ticks)
        return CpuSnapshot(ticks, machine_busy_ticks())


@dataclass
class CpuUse:
    """CPU milliseconds each group used between two snapshots, and the machine's busy time."""

    ms: dict[str, float]
    machine_ms: float
    seconds: float

    @classmethod
    def between(cls, start: CpuSnapshot, end: CpuSnapshot) -> CpuUse:
        ms: dict[str, float] = {}
        for pid, (group, ticks) in end.ticks.items():
            before = start.ticks.get(pid)
            # A process that started in between used all its time in the window; one that
            # ended in between is lost (pooled connections and processes live on).
            used = ticks - before[1] if before and before[0] == group else ticks
            ms[group] = ms.get(group, 0.0) + used * TICK_MS
        return cls(ms, (end.machine - start.machine) * TICK_MS, end.at - start.at)

    @property
    def total_ms(self) -> float:
        return sum(self.ms.values())

    @property
    def suite_ms(self) -> float:
        return sum(ms for group, ms in self.ms.items() if is_suite(group))

    @property
    def others_ms(self) -> float:
        """The load generator's and the fakes'."""
        return self.total_ms - self.suite_ms
