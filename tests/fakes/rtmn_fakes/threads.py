"""An event loop in a background thread that runs one server from start to close."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any


class LoopThread:
    def __init__(self, thread: threading.Thread, loop: asyncio.AbstractEventLoop) -> None:
        self._thread, self._loop = thread, loop

    @classmethod
    def start(
        cls,
        start: Callable[[], Awaitable[Any]],
        close: Callable[[], Awaitable[None]],
        name: str,
        timeout: float,
    ) -> LoopThread:
        """Run `start()` on a new loop in a new thread and return once it has; its exception,
        if any, is raised here. `close()` runs on that loop when `stop()` is called."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        async def started_up() -> None:
            await start()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(started_up())
            except BaseException as exc:  # handed to the starting thread below
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(close())
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        thread = threading.Thread(target=serve, name=name, daemon=True)
        thread.start()
        if not started.wait(timeout):
            raise TimeoutError(f"{name} did not start within {timeout}s")
        if failure:
            thread.join()
            raise failure[0]
        return cls(thread, loop)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
