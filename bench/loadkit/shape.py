"""The shape the suite has, read from the run: what one payment asks of the infrastructure.

Events per payment are the outbox rows the payments wrote, by type, across every schema's
outbox; deliveries are, for each of those types, the queues bound to it on the suite's exchange
in the run's vhost. So a change of the suite's topology or of what it publishes shows in the
floor the run measures, instead of leaving a constant stale.
"""

from __future__ import annotations

import subprocess
from collections import Counter

import asyncpg
from floor import Shape, topic_matches

from rtmn_shared.suite import EXCHANGE

# Not read from the run (PostgreSQL's commit counter counts every read too, and the fakes keep
# their requests to themselves), so declared, as the event catalogue and the services' store.py have
# them. Durable commits: the payment at create; its outcome with its outbox row at the webhook;
# the credit with its inbox and outbox rows; the email's record; the two pushes' records.
COMMITS = 6
# HTTP exchanges: the create and the webhook through the gateway, the order at Razorpay, the
# email at SendGrid, the two pushes at FCM.
EXCHANGES = 6


async def outbox_rows(conn: asyncpg.Connection) -> Counter[str]:
    """Every outbox row so far, by event type, across the schemas."""
    schemas = await conn.fetch(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'"
    )
    rows: Counter[str] = Counter()
    for schema in schemas:
        counted = await conn.fetch(
            f'SELECT type, count(*) AS n FROM "{schema["table_schema"]}".outbox GROUP BY type'  # noqa: S608 - a schema name from the catalogue
        )
        rows.update({row["type"]: row["n"] for row in counted})
    return rows


def per_payment(before: Counter[str], after: Counter[str], payments: int) -> dict[str, float]:
    return {
        kind: (after[kind] - before[kind]) / payments
        for kind in sorted(after)
        if after[kind] > before[kind]
    }


def bindings(vhost: str) -> list[tuple[str, str]]:
    """(queue, binding key) of every queue bound to the suite's exchange."""
    listed = subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "list_bindings",
            "-p",
            vhost,
            "source_name",
            "destination_name",
            "destination_kind",
            "routing_key",
            "--no-table-headers",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    found = []
    for line in listed.splitlines():
        source, destination, kind, key = [*line.split("\t"), "", "", ""][:4]
        if source == EXCHANGE and kind == "queue":
            found.append((destination, key))
    return found


def shape_of(events: dict[str, float], bound: list[tuple[str, str]]) -> Shape:
    """The run's shape: its events per payment (rounded to whole events) and the queues bound
    to any of them, with the declared commits and exchanges."""
    counts = tuple((kind, round(n)) for kind, n in events.items() if round(n) > 0)
    keys: dict[str, list[str]] = {}
    for queue, key in bound:
        if any(topic_matches(key, kind) for kind, _ in counts):
            keys.setdefault(queue, []).append(key)
    queues = tuple((queue, tuple(k)) for queue, k in sorted(keys.items()))
    return Shape("the run's", "run", counts, queues, commits=COMMITS, exchanges=EXCHANGES)
