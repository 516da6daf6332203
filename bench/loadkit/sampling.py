"""Every supervised process's memory each second and the broker's queue depths every two."""

from __future__ import annotations

import asyncio
import time

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection
from faults_kit import queue_depths

from rtmn_shared.testing.processes import Supervisor


class Sampler:
    def __init__(self, processes: Supervisor, amqp_url: str, vhost: str) -> None:
        self.processes, self.amqp_url, self.vhost = processes, amqp_url, vhost
        self.names = list(processes.running)
        self.memory: list[tuple[float, dict[str, int]]] = []
        self.depths: list[tuple[float, dict[str, int]]] = []
        self.started = time.monotonic()
        self._connection: AbstractConnection | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._connection is not None:
            await self._connection.close()

    def now(self) -> float:
        return time.monotonic() - self.started

    def rss_at(self, since: float) -> dict[str, int]:
        return next((m for t, m in self.memory if t >= since), self.memory[-1][1])

    async def _run(self) -> None:
        queues = [
            q
            for q in await asyncio.to_thread(queue_depths, self.vhost)
            if not q.endswith(".dlq") and ".retry." not in q
        ]
        channel = None
        tick = 0
        while True:
            self.memory.append((self.now(), {n: self.processes.rss_bytes(n) for n in self.names}))
            if tick % 2 == 0:
                channel = await self._sample_depths(channel, queues)
            tick += 1
            await asyncio.sleep(1)

    async def _sample_depths(
        self, channel: AbstractChannel | None, queues: list[str]
    ) -> AbstractChannel | None:
        try:
            if channel is None or channel.is_closed:
                if self._connection is not None:
                    await self._connection.close()
                self._connection = await aio_pika.connect(self.amqp_url)
                channel = await self._connection.channel()
            depths = {}
            for name in queues:
                declared = await channel.declare_queue(name, passive=True)
                depths[name] = declared.declaration_result.message_count or 0
            self.depths.append((self.now(), depths))
        except (aio_pika.exceptions.AMQPError, OSError):
            return None  # the broker restarting (another run's fault test)
        return channel
