"""Each service's roles stay in its schema, the runtime one among its rows; an event nobody
binds is kept, not dropped."""

from __future__ import annotations

import aio_pika
import asyncpg
import pytest

from demo_events import outbox, relay
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import OtpVerified
from rtmn_shared.provision import ensure_login
from rtmn_shared.suite import SERVICES, UNROUTED_QUEUE, ServiceInfo
from rtmn_shared.testing.infra import (
    HARNESS,
    Suite,
    password_of,
    provision_for_tests,
    rabbitmqctl,
)
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
    finally:
        await conn.close()


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_the_runtime_role_writes_rows_and_changes_no_object_of_its_schema(
    suite: Suite, service: str
) -> None:
    info = SERVICES[service]
    owner = await asyncpg.connect(suite.database_url, user=info.owner)
    runtime = await asyncpg.connect(suite.database_url, user=info.role)
    probe = f'"{info.schema}".role_probe'
    try:
        await owner.execute(f"CREATE TABLE {probe} (id int GENERATED ALWAYS AS IDENTITY, v int)")
        # Row rights on what the owner makes come by default privileges. Names are ours.
        await runtime.execute(f"INSERT INTO {probe} (v) VALUES (1)")  # noqa: S608
        await runtime.execute(f"UPDATE {probe} SET v = 2")  # noqa: S608
        assert await runtime.fetchval(f"SELECT v FROM {probe}") == 2  # noqa: S608
        await runtime.execute(f"DELETE FROM {probe}")  # noqa: S608
        for ddl in (
            f'CREATE TABLE "{info.schema}".intruder (id int)',
            f"ALTER TABLE {probe} ADD COLUMN w int",
            f"CREATE INDEX ON {probe} (v)",
            f"DROP TABLE {probe}",
            f"TRUNCATE {probe}",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await runtime.execute(ddl)
    finally:
        await owner.execute(f"DROP TABLE IF EXISTS {probe}")
        await owner.close()
        await runtime.close()


async def test_a_schema_the_runtime_role_owned_before_the_split_is_handed_to_the_owner(
    suite: Suite, admin: asyncpg.Connection[asyncpg.Record]
) -> None:
    old = ServiceInfo("handover", 0)
    await admin.execute("DROP SCHEMA IF EXISTS handover CASCADE")
    await ensure_login(admin, old.role, password_of(old.role))
    await admin.execute(f"GRANT CONNECT ON DATABASE {suite.database} TO {old.role}")
    await admin.execute(f"CREATE SCHEMA handover AUTHORIZATION {old.role}")  # as before
    runtime = await asyncpg.connect(suite.database_url, user=old.role)
    try:
        await runtime.execute("CREATE TABLE handover.t (id int GENERATED ALWAYS AS IDENTITY)")
        await provision_for_tests(suite.database, [old])
        owners = await admin.fetch(
            "SELECT relowner::regrole::text AS owner FROM pg_class"
            " WHERE relnamespace = 'handover'::regnamespace"
        )
        assert {row["owner"] for row in owners} == {old.owner}  # the table and its sequence
        await runtime.execute("INSERT INTO handover.t DEFAULT VALUES")  # rows still its own
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await runtime.execute("DROP TABLE handover.t")
    finally:
        await runtime.close()
        await admin.execute("DROP SCHEMA handover CASCADE")


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
