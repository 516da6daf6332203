"""The events leave through the relay: a queue bound to rtmn.events receives them."""

from __future__ import annotations

import aio_pika
import orjson
from payments_testkit import Api

from rtmn_fakes.razorpay import RazorpayFake
from rtmn_shared.events.topology import declare_exchange


async def test_payment_success_reaches_a_bound_queue_once(
    api: Api, razorpay: RazorpayFake, user: str
) -> None:
    connection = await aio_pika.connect(api.suite.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await declare_exchange(channel)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="payment.success")
        created, paid = await api.paid(user)
        body = razorpay.build_webhook("payment.captured", payment_id=paid["id"])

        for _ in range(3):  # redelivered by Razorpay under new event ids
            assert (await api.razorpay_webhook(body)).status == 200

        received = []
        async with queue.iterator(timeout=10) as messages:
            async for message in messages:
                await message.ack()
                event = orjson.loads(message.body)
                if event["subject"] == created["payment_id"]:
                    received.append(event)
                    break
        assert received[0]["type"] == "payment.success"
        assert received[0]["source"] == "rtmn/payments"
        assert received[0]["data"]["gateway_payment_id"] == paid["id"]
        # Nothing else about this payment follows.
        extra = await queue.get(no_ack=True, fail=False)
        while extra is not None:
            assert orjson.loads(extra.body)["subject"] != created["payment_id"]
            extra = await queue.get(no_ack=True, fail=False)
