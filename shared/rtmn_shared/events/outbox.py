"""Writing events: one row in the service's outbox, inside the caller's transaction."""

from __future__ import annotations

import uuid
from typing import NamedTuple

from rtmn_shared.db import Connection
from rtmn_shared.events.envelope import CloudEvent, EventData


class OutboxRow(NamedTuple):
    """The values of one outbox row, for a service that folds the insert into its own statement."""

    event_id: uuid.UUID
    routing_key: str
    subject: str | None
    payload: str

    @classmethod
    def of(cls, event: CloudEvent, routing_key: str | None = None) -> OutboxRow:
        return cls(event.id, routing_key or event.type, event.subject, event.to_json().decode())


class Outbox:
    """Stamps events with the service as their source; nothing here talks to the broker."""

    def __init__(self, source: str) -> None:
        self.source = source

    async def add(
        self, conn: Connection, data: EventData, *, routing_key: str | None = None
    ) -> CloudEvent:
        """Writes the event; `routing_key` (default: its type) lets a service route an event to
        a work queue of its own, e.g. notify's campaign batches."""
        if not conn.is_in_transaction():
            raise RuntimeError("outbox rows must be written inside the state change's transaction")
        event = CloudEvent.of(data, source=self.source)
        await conn.execute(
            "INSERT INTO outbox (event_id, type, subject, payload) VALUES ($1, $2, $3, $4)",
            *OutboxRow.of(event, routing_key),
        )
        return event
