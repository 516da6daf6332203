"""Each service's own broker and Redis login reaches what it uses and nothing of another's."""

from __future__ import annotations

import aio_pika
import pytest
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError

from rtmn_shared.access import (
    CONSUMERS,
    SCALER,
    broker_grant,
    delete_broker_users,
    delete_redis_users,
    principals,
    produced_by,
)
from rtmn_shared.cli.logins import provision_logins
from rtmn_shared.events.publishers import Logins
from rtmn_shared.events.topology import QueueNames, declare_consumer_queues, declare_exchange
from rtmn_shared.settings import with_login
from rtmn_shared.suite import EXCHANGE, SERVICES, UNROUTED_QUEUE
from rtmn_shared.testing.infra import Suite

# OTP's wrong-guess counter, as otp/store.py names it.
OTP_ATTEMPTS = "otp:{" + "ab" * 32 + "}:login:wrong"
INCREMENT = "return redis.call('INCR', KEYS[1])"


def test_only_producers_may_publish_events_and_only_their_own_types() -> None:
    assert produced_by("analytics") == ()
    assert broker_grant("analytics").publishes == r"^(analytics\..+)$"
    assert broker_grant("geo").publishes == "^$"
    assert broker_grant("media").publishes == r"^(media\.uploaded)$"
    assert "amq" not in broker_grant("media").write  # no consumer: no default exchange
    assert broker_grant("media").binds == "^$"  # nor may it bind a queue to the events
    assert set(principals()) >= set(SERVICES) | {"ops", "accounts", "commerce"}


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_each_service_declares_what_it_uses_with_its_own_login(
    suite: Suite, service: str
) -> None:
    connection = await aio_pika.connect(suite.amqp_url_as(service))
    try:
        channel = await connection.channel()
        exchange = await declare_exchange(channel)
        if service in CONSUMERS:
            names = QueueNames(f"{service}.access-check")
            await declare_consumer_queues(channel, exchange, names, ("payment.success",), (100,))
            for queue in (names.main, names.retry(100), names.dlq):
                await channel.queue_delete(queue)
        with pytest.raises(aio_pika.exceptions.ChannelClosed, match="ACCESS_REFUSED"):
            other = "payments" if service == "wallet" else "wallet"
            await channel.declare_queue(f"{other}.stolen")  # another service's name
        if service not in CONSUMERS:
            # Nor may it bind the one queue it can write to under the events to read them.
            channel = await connection.channel()
            with pytest.raises(aio_pika.exceptions.ChannelClosed, match="ACCESS_REFUSED"):
                queue = await channel.get_queue(UNROUTED_QUEUE, ensure=False)
                await queue.bind(EXCHANGE, routing_key="#")
    finally:
        await connection.close()


async def test_the_scalers_login_reads_a_queues_depth_and_can_do_nothing_else(
    suite: Suite,
) -> None:
    wallet = await aio_pika.connect(suite.amqp_url_as("wallet"))
    scaler = await aio_pika.connect(suite.amqp_url_as(SCALER))
    try:
        names = QueueNames("wallet.depth-check")
        channel = await wallet.channel()
        exchange = await declare_exchange(channel)
        await declare_consumer_queues(channel, exchange, names, ("payment.success",), (100,))
        await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=names.main)

        looking = await scaler.channel()
        queue = await looking.declare_queue(names.main, passive=True)  # what KEDA asks
        assert queue.declaration_result.message_count == 1
        with pytest.raises(aio_pika.exceptions.ChannelClosed, match="ACCESS_REFUSED"):
            await queue.get(no_ack=True)  # nor take the message
        with pytest.raises(aio_pika.exceptions.ChannelClosed, match="ACCESS_REFUSED"):
            await (await scaler.channel()).declare_queue("keda.own")  # nor declare one

        for name in (names.main, names.retry(100), names.dlq):
            await channel.queue_delete(name)
    finally:
        await scaler.close()
        await wallet.close()


async def test_a_service_cannot_read_or_delete_another_services_redis_keys(
    suite: Suite, redis: Redis
) -> None:
    await redis.set(OTP_ATTEMPTS, 2)
    async with Redis.from_url(suite.redis_url_as("media")) as media:
        for attempt in (
            media.get(OTP_ATTEMPTS),
            media.delete(OTP_ATTEMPTS),
            media.eval(INCREMENT, 1, OTP_ATTEMPTS),
            media.keys("*"),
            media.flushdb(),
        ):
            with pytest.raises(NoPermissionError):
                await attempt
        await media.set("media:uploads-in-flight:u1", 1, ex=5)  # its own keys it may use
    async with Redis.from_url(suite.redis_url_as("otp")) as otp:
        assert await otp.get(OTP_ATTEMPTS) == b"2"
        assert await otp.eval(INCREMENT, 1, OTP_ATTEMPTS) == 3  # its Lua scripts run
        script = otp.register_script(INCREMENT)
        assert await script(keys=[OTP_ATTEMPTS]) == 4  # EVALSHA, loading on NOSCRIPT
    assert await redis.get(OTP_ATTEMPTS) == b"4"


async def test_rtmn_db_init_makes_the_logins_it_has_passwords_for_and_again_changes_nothing(
    suite: Suite,
) -> None:
    prefix = f"rtmn_i{suite.run_id}_"
    environ = {
        "SERVICE_USER_PREFIX": prefix,
        "AMQP_URL": suite.amqp_url,  # its vhost is where the permissions go
        "REDIS_URL": f"{suite.redis_url}",
        "WALLET_AMQP_PASSWORD": "wallet-secret",
        "OPS_AMQP_PASSWORD": "ops-secret",
        "OTP_REDIS_PASSWORD": "otp-secret",
    }
    logins = Logins(prefix)
    try:
        for _ in range(2):
            done = await provision_logins(environ)
            assert done == [
                f"broker logins ops, wallet on vhost {suite.vhost}",
                "Redis users otp",
            ]
        wallet = with_login(suite.amqp_url, logins.of("wallet"), "wallet-secret")
        connection = await aio_pika.connect(wallet)
        await declare_exchange(await connection.channel())
        await connection.close()
        otp = with_login(suite.redis_url, logins.of("otp"), "otp-secret")
        async with Redis.from_url(otp) as client:
            assert await client.acl_whoami() == logins.of("otp")
            with pytest.raises(NoPermissionError):
                await client.get("wallet:anything")
    finally:
        delete_broker_users([logins.of("wallet"), logins.of("ops")])
        async with Redis.from_url(suite.redis_url) as admin:
            await delete_redis_users(admin, [logins.of("otp")])
