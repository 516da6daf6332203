"""Waiting on a condition with a deadline: tests never sleep for synchronisation."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


async def wait_for(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for polling, not a cancellation scope
    interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Polls until `condition()` is truthy and returns its value; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        result = condition()
        last = await result if inspect.isawaitable(result) else result
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {message}; last: {last!r}"
            )
        await asyncio.sleep(interval)


async def cancel_all(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Cancels the tasks and waits until each has ended; one that failed raises its error."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
