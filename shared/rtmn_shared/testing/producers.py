"""Events published as their producers' relays publish them: under the producer's own broker
login, with `user_id` stamped, so consumers under test apply their publisher check."""

from __future__ import annotations

from aio_pika.abc import AbstractChannel, AbstractConnection

from rtmn_shared.events import brokers
from rtmn_shared.events.catalogue import PRODUCED_BY
from rtmn_shared.events.envelope import CloudEvent
from rtmn_shared.events.topology import declare_exchange, event_message
from rtmn_shared.suite import EXCHANGE
from rtmn_shared.testing.infra import Suite


class Producers:
    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self._connections: dict[str, AbstractConnection] = {}
        self._channels: dict[str, AbstractChannel] = {}

    async def channel(self, name: str) -> AbstractChannel:
        """A confirming channel logged in as `name`, once the events exchange is declared."""
        if name not in self._channels or self._channels[name].is_closed:
            connection = await brokers.connect(self.suite.amqp_url_as(name))
            self._connections[name] = connection
            self._channels[name] = await connection.channel(publisher_confirms=True)
            await declare_exchange(self._channels[name])
        return self._channels[name]

    async def publish(
        self,
        *events: CloudEvent,
        times: int = 1,
        producer: str | None = None,
        queue: str | None = None,
    ) -> None:
        """Publishes each event `times` times with its id (as a redelivery would look), through
        the events exchange or, with `queue`, straight into that queue; as the event type's first
        producer unless `producer` names another."""
        for event in events:
            name = producer or PRODUCED_BY[event.type][0]
            channel = await self.channel(name)
            message = event_message(
                event.to_json(),
                message_id=str(event.id),
                type=event.type,
                user_id=self.suite.logins.of(name),
            )
            if queue is None:
                exchange = await channel.get_exchange(EXCHANGE, ensure=False)
                for _ in range(times):
                    await exchange.publish(message, routing_key=event.type)
            else:
                for _ in range(times):
                    await channel.default_exchange.publish(message, routing_key=queue)

    async def close(self) -> None:
        for connection in self._connections.values():
            await connection.close()
        self._connections.clear()
        self._channels.clear()
