"""Daily partitions of the dedupe tables: made a few days ahead, dropped once past the window.

Every table of the schema partitioned by range on a `day` column is kept (the shared `inbox`,
payments' `webhook_deliveries`). Each has a DEFAULT partition `<table>_default` that is also the
template of the daily ones (columns, defaults, primary key): a row whose day has no partition
lands there, so an insert never fails for want of one, and stays deduplicated there. Keeping
runs from the relay's periodic purge and after migrations; replicas take turns (an advisory
lock), and DDL waits at most LOCK_TIMEOUT for the writers, then tries again next time.

Only the schema's owner (the migration role) may make and drop partitions: `python -m <svc>
migrate` keeps them, and must run at least every AHEAD_DAYS days (a deploy, or the daily
maintenance run). The runtime role's relay, which may change no table, only purges the default
partition's rows past the window, which are rows, and leaves the days to the owner.

- Ahead: today and the next AHEAD_DAYS days get their partitions, so midnight UTC needs no DDL.
  Rows the default caught for such a day (nothing kept the partitions for days) move into its
  new partition in the same transaction.
- Behind: a partition whose days all lie before `DedupeWindow.kept_from` is dropped (the cost
  of a file unlink, whatever it held); the default loses its rows of those days.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import asyncpg

from rtmn_shared.db import UNAVAILABLE, Connection
from rtmn_shared.dedupe import ONE_DAY, DedupeWindow

log = logging.getLogger(__name__)

AHEAD_DAYS = 3
LOCK_TIMEOUT = "500ms"

_TABLES = """
    SELECT c.relname FROM pg_partitioned_table p
    JOIN pg_class c ON c.oid = p.partrelid
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0]
    WHERE c.relnamespace = current_schema()::regnamespace
        AND p.partstrat = 'r' AND p.partnatts = 1 AND a.attname = 'day'
    ORDER BY c.relname
"""
_OWNED = "SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = $1::regclass"
_PARTITIONS = """
    SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class t ON t.oid = i.inhparent
    WHERE t.relname = $1 AND t.relnamespace = current_schema()::regnamespace
"""
# pg_get_expr under DateStyle ISO: FOR VALUES FROM ('2026-12-05') TO ('2026-12-06').
_BOUND = re.compile(r"FROM \((?:MINVALUE|'([0-9-]+)')\) TO \((?:MAXVALUE|'([0-9-]+)')\)")
# The upkeep's own refusals: a lock not had in time, or a row that slipped into the default
# while a day was being attached; both are tried again next time.
_TRY_LATER = (asyncpg.LockNotAvailableError, asyncpg.CheckViolationError)


@dataclass(frozen=True)
class Partition:
    name: str
    start: date | None  # None: from MINVALUE
    end: date | None  # None: to MAXVALUE; exclusive

    def covers(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day < self.end)


@dataclass
class Kept:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    purged: int = 0  # rows of the default partition past the window


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


async def keep_partitions(
    conn: Connection, window: DedupeWindow, today: date | None = None
) -> Kept:
    """Keeps every day-partitioned table of the connection's schema; what it did."""
    today = today or datetime.now(UTC).date()
    kept = Kept()
    for table in [r["relname"] for r in await conn.fetch(_TABLES)]:
        try:
            if await conn.fetchval(_OWNED, _q(table)):
                await _keep(conn, table, window.kept_from(today), today, kept)
            else:
                kept.purged += await _purge_default(conn, table, window.kept_from(today))
        except _TRY_LATER as error:
            log.warning("partitions of %s: %s; trying again later", table, error)
        except (asyncpg.PostgresError, ValueError) as error:
            if isinstance(error, UNAVAILABLE):
                raise  # the database is away: the caller's outage handling waits it out
            # A partition someone else made, a privilege missing: a person must look, and
            # the caller (the relay) must not stop for it. The default still takes every row.
            log.error("partitions of %s not kept: %s: %s", table, type(error).__name__, error)
    return kept


async def create_day(conn: Connection, table: str, day: date) -> str:
    """`day`'s partition of `table`, with the rows the default held for it. In a transaction."""
    name, default = partition_name(table, day), f"{table}_default"
    # DDL takes no parameters: the names are ours and the bounds are dates we computed.
    await conn.execute(f"CREATE TABLE {_q(name)} (LIKE {_q(default)} INCLUDING ALL)")
    await conn.execute(
        f"WITH moved AS (DELETE FROM {_q(default)} WHERE day = $1 RETURNING *) "  # noqa: S608
        f"INSERT INTO {_q(name)} SELECT * FROM moved",
        day,
    )
    await conn.execute(
        f"ALTER TABLE {_q(table)} ATTACH PARTITION {_q(name)} "
        f"FOR VALUES FROM ('{day.isoformat()}') TO ('{(day + ONE_DAY).isoformat()}')"
    )
    return name


async def partitions_of(conn: Connection, table: str) -> tuple[list[Partition], str | None]:
    """The ranged partitions of `table`, and its default partition's name if it has one."""
    async with conn.transaction():
        await conn.execute("SET LOCAL datestyle = 'ISO'")
        rows = await conn.fetch(_PARTITIONS, table)
    ranged, default = [], None
    for row in rows:
        if row["bound"] == "DEFAULT":
            default = row["relname"]
            continue
        found = _BOUND.fullmatch(row["bound"].removeprefix("FOR VALUES "))
        if found is None:
            raise ValueError(f"{row['relname']}: unexpected bound {row['bound']!r}")
        start, end = (date.fromisoformat(v) if v else None for v in found.groups())
        ranged.append(Partition(row["relname"], start, end))
    return ranged, default


async def _keep(conn: Connection, table: str, kept_from: date, today: date, kept: Kept) -> None:
    ranged, default = await partitions_of(conn, table)
    for partition in ranged:
        if partition.end is not None and partition.end <= kept_from:
            async with _locked(conn, table):
                await conn.execute(f"DROP TABLE IF EXISTS {_q(partition.name)}")
            kept.dropped.append(partition.name)
            log.info("dropped %s: its days are past the dedupe window", partition.name)
    if default is None:
        return  # not one of ours: no template to make days from
    kept.purged += await _purge_default(conn, table, kept_from, default)
    for offset in range(AHEAD_DAYS + 1):
        day = today + offset * ONE_DAY
        if any(p.covers(day) for p in ranged):
            continue
        async with _locked(conn, table):
            if await conn.fetchval("SELECT to_regclass($1)", _q(partition_name(table, day))):
                continue  # another replica's upkeep made it meanwhile
            kept.created.append(await create_day(conn, table, day))
        log.info("created %s", kept.created[-1])


async def _purge_default(
    conn: Connection, table: str, kept_from: date, default: str | None = None
) -> int:
    """Deletes the default partition's rows of days past the window; how many."""
    default = default or f"{table}_default"
    async with _locked(conn, table):
        if not await conn.fetchval("SELECT to_regclass($1)", _q(default)):
            return 0
        status = await conn.execute(f"DELETE FROM {_q(default)} WHERE day < $1", kept_from)  # noqa: S608
    return int(status.split()[-1])


@contextlib.asynccontextmanager
async def _locked(conn: Connection, table: str) -> AsyncIterator[None]:
    """A transaction holding the table's upkeep lock, waiting for writers' locks only briefly."""
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('rtmn.partitions.' || current_schema() || $1))",
            table,
        )
        yield


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
