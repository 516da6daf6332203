"""A broker that is several nodes: `AMQP_URL` may list them, comma-separated
(`amqp://u:p@node1:5672/,amqp://u:p@node2:5672/`), or name one address that fronts them all (the
RabbitMQ Cluster Operator's Service). Neither aio-pika nor aiormq takes more than one address, so
every connection of the suite is opened here: each address in turn, from a random one, so a
node's clients spread over the others when it dies, and a dead node costs one refused connect.
"""

from __future__ import annotations

import logging
import random
from urllib.parse import urlsplit

import aio_pika
from aio_pika.abc import AbstractConnection

log = logging.getLogger(__name__)


class NoBrokerError(ConnectionError):
    """Not one of the addresses took the connection; the last address's error is the cause."""


def addresses(url: str) -> list[str]:
    """The URL's addresses, in the order given; a password's comma arrives quoted (%2C)."""
    found = [part.strip() for part in url.split(",") if part.strip()]
    if not found:
        raise ValueError("no broker address given")
    return found


def where(url: str) -> str:
    """host:port of one address, for a log line (no login)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5672}"


async def connect(url: str, timeout: float = 5.0) -> AbstractConnection:  # noqa: ASYNC109
    """A connection to the first address, from a random one, that takes it."""
    candidates = addresses(url)
    start = random.randrange(len(candidates))  # spreading load, not a secret
    error: BaseException | None = None
    for address in candidates[start:] + candidates[:start]:
        try:
            connection = await aio_pika.connect(address, timeout=timeout)
        except (OSError, TimeoutError, aio_pika.exceptions.AMQPError) as failed:
            if len(candidates) == 1:
                raise
            log.warning("broker node %s refused (%s)", where(address), type(failed).__name__)
            error = failed
            continue
        if len(candidates) > 1:
            log.info("connected to broker node %s", where(address))
        return connection
    raise NoBrokerError(f"none of {len(candidates)} broker addresses answered") from error
