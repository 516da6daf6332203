"""Each service's role stays in its own schema; an event nobody binds is kept, not dropped."""

from __future__ import annotations

import aio_pika
import asyncpg
import pytest

from demo_events import outbox, relay
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import OtpVerified
from rtmn_shared.suite import SERVICES, UNROUTED_QUEUE
from rtmn_shared.testing.infra import HARNESS, Suite, rabbitmqctl
from rtmn_shared.testing.plugin import Background
from rtmn_shared.testing.waiting import wait_for


@pytest.mark.parametrize("role", sorted(info.role for info in SERVICES.values()))
async def test_a_service_role_is_refused_on_another_schema(
    suite: Suite, demo_pool: Pool, role: str
) -> None:
    conn = await asyncpg.connect(suite.database_url, user=role)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM demo.outbox")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.intruder (id int)")
        own = role.removeprefix("rtmn_")
        await conn.execute(f'CREATE TABLE "{own}".isolation_probe (id int)')
        await conn.execute(f'DROP TABLE "{own}".isolation_probe')
    finally:
        await conn.close()


async def test_an_event_no_group_consumes_lands_in_the_unrouted_queue(
    clean_demo: Pool, suite: Suite, background: Background
) -> None:
    # A vhost of its own: elsewhere in the run, analytics binds `#` and so routes everything.
    vhost = f"{suite.vhost}-unrouted"
    rabbitmqctl("add_vhost", vhost)
    suite.grant(vhost)
    amqp_url = suite.amqp_url_as(HARNESS, vhost)
    try:
        await _assert_unrouted_kept(clean_demo, suite, background, amqp_url)
    finally:
        rabbitmqctl("delete_vhost", vhost)


async def _assert_unrouted_kept(
    clean_demo: Pool, suite: Suite, background: Background, amqp_url: str
) -> None:
    async with clean_demo.acquire() as conn, conn.transaction():  # no group here binds it
        event_id = (await outbox.add(conn, OtpVerified(phone_hash="h", purpose="login"))).id
    background(relay(clean_demo, suite, amqp_url=amqp_url).run())
    await wait_for(
        lambda: clean_demo.fetchval("SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL"),
        message="the relay marked it sent",
    )
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(UNROUTED_QUEUE)
        ids = []
        while (message := await queue.get(fail=False)) is not None:
            ids.append(message.message_id)
            await message.ack()
        assert str(event_id) in ids
    finally:
        await connection.close()
