"""`rtmn-dlq`: look into a consumer group's dead-letter queue and replay what is there.

    rtmn-dlq list wallet.credit-cashback
    rtmn-dlq replay wallet.credit-cashback [--limit N]

Replayed messages go back to that group's queue only (never through the topic exchange, which
would hand them to every other group again), with their attempt count reset. A replay of
something already applied does nothing, inside the dedupe window (DEDUPE_WINDOW_DAYS of the
event's own time); a message older than that is refused again, back here with the reason
"past the dedupe window", because whether it was applied can no longer be told.

A replay publishes under the operator's login (`<SERVICE_USER_PREFIX>ops`, given in AMQP_URL),
which the broker stamps as its `user_id`; the first-hand producer rides in a header that the
consumer believes from the operator and the group itself only (events/publishers.py), so a
replay never launders an event the consumer refused for its publisher: it is refused again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import aio_pika

from rtmn_shared.events import brokers
from rtmn_shared.events.consumer import ATTEMPT_HEADER, ERROR_HEADER, copy_of
from rtmn_shared.events.publishers import (
    DEFAULT_PREFIX,
    PRODUCER_HEADER,
    Logins,
    login_of,
    relaying_logins,
)
from rtmn_shared.settings import service_logins


async def dead_letters(
    amqp_url: str, queue: str, limit: int, replay: bool, logins: Logins | None = None
) -> list[dict[str, Any]]:
    logins = logins or Logins(os.environ.get("SERVICE_USER_PREFIX", DEFAULT_PREFIX))
    login = login_of(amqp_url)
    # The group's own moves and the operator's replays name the producer; nobody else's do.
    relaying = relaying_logins(logins, login, logins.of(queue.partition(".")[0]))
    connection = await brokers.connect(amqp_url, timeout=5)
    seen: list[dict[str, Any]] = []
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        dlq = await channel.get_queue(f"{queue}.dlq", ensure=True)
        while len(seen) < limit:
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = dict(message.headers or {})
            seen.append(
                {
                    "message_id": message.message_id,
                    "type": message.type,
                    "attempts": headers.get(ATTEMPT_HEADER),
                    "producer": headers.get(PRODUCER_HEADER) or message.user_id,
                    "last_error": headers.get(ERROR_HEADER) or _death_reason(headers),
                    "body": message.body[:200].decode(errors="replace"),
                }
            )
            if replay:
                headers[ATTEMPT_HEADER] = 1
                await channel.default_exchange.publish(
                    copy_of(message, headers, login=login, relaying=relaying),
                    routing_key=queue,
                    mandatory=True,
                )
                await message.ack()
        if not replay:
            # Browsing must not consume: unacked messages return to the DLQ, in order.
            await channel.close()
    finally:
        await connection.close()
    return seen


def _death_reason(headers: dict[str, Any]) -> str | None:
    """Why the broker itself dead-lettered a message (e.g. delivery_limit after crashes)."""
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        return str(deaths[0].get("reason"))
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="rtmn-dlq", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("queue", help="the consumer group's queue, e.g. wallet.credit-cashback")
    parser.add_argument("--limit", type=int, default=1000)
    # The operator's login (OPS_AMQP_PASSWORD) where one is set, else AMQP_URL as given.
    default_url = service_logins("ops").get("amqp_url") or os.environ.get(
        "AMQP_URL", "amqp://guest:guest@localhost:5672/"
    )
    parser.add_argument("--amqp-url", default=default_url)
    args = parser.parse_args(argv)
    try:
        messages = asyncio.run(
            dead_letters(args.amqp_url, args.queue, args.limit, args.command == "replay")
        )
    except (aio_pika.exceptions.AMQPError, OSError) as error:
        sys.exit(f"rtmn-dlq: {type(error).__name__}: {error}")
    for m in messages:
        print(f"{m['message_id']}  {m['type']}  attempts={m['attempts']}  error={m['last_error']}")
    verb = "replayed" if args.command == "replay" else "dead-lettered"
    print(f"{len(messages)} message(s) {verb} in {args.queue}.dlq")
