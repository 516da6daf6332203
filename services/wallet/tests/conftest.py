from __future__ import annotations

import sys
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest

# Test helpers beside this file (wallet_events.py) import by name, as in the other suites.
sys.path.insert(0, str(Path(__file__).parent))

from rtmn_shared.db import Pool
from rtmn_shared.events.consumer import Delivery, Handler
from rtmn_shared.events.envelope import CloudEvent, EventData
from rtmn_shared.events.inbox import DEFAULT_INBOX
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.testing.plugin import Migrator
from wallet import handlers
from wallet.domain import EarningRule, parse_multipliers
from wallet.ledger import Ledger

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"

RULE = EarningRule(
    percent=Decimal(5),
    multipliers=parse_multipliers("bronze=1,silver=1.25,gold=1.5,platinum=2"),
    default_tier="bronze",
    cap_coins=500,
)

Deliver = Callable[..., Awaitable[bool]]


@pytest.fixture(scope="session")
async def wallet_pool(service_pool: Migrator) -> Pool:
    return await service_pool("wallet", MIGRATIONS)


@pytest.fixture(scope="session")
def wallet_handlers() -> dict[type[EventData], Handler]:
    built = handlers.build_handlers(Ledger(RULE, Outbox("rtmn/wallet")))
    return {model: h for h in built for model in h.events}


@pytest.fixture(scope="session")
def deliver(wallet_pool: Pool, wallet_handlers: dict[type[EventData], Handler]) -> Deliver:
    """Applies an event as the consumer runner does: inbox row and effect in one transaction.

    Returns False when the inbox already held the event (a redelivery).
    """

    async def apply(data: EventData, event_id: uuid.UUID | None = None) -> bool:
        handler = wallet_handlers[type(data)]
        event = CloudEvent.of(data, source="rtmn/test", event_id=event_id)
        async with wallet_pool.acquire() as conn, conn.transaction():
            fresh = await DEFAULT_INBOX.record(conn, f"wallet.{handler.name}", event)
            if fresh:
                await handler.apply(Delivery(event, data, 1, conn))
            return fresh

    return apply


@pytest.fixture(scope="session")
def rule() -> EarningRule:
    return RULE
