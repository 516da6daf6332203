"""Image work off the event loop, in a bounded pool that refuses work instead of queueing it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from media.imaging import Rendered, Target, harden_pillow, render

RenderFn = Callable[..., Rendered]


class Overloaded(Exception):
    """Every worker is busy and the short queue behind them is full: try again shortly."""


class Processor:
    """`workers` threads (Pillow releases the GIL while it decodes, resizes and encodes, so
    threads use every core) and at most `queue` more images waiting for one of them; each
    image's WebP encodes overlap its resizes in a second pool of the same size."""

    def __init__(
        self,
        *,
        workers: int,
        queue: int,
        max_pixels: int,
        render_fn: RenderFn = render,
    ) -> None:
        harden_pillow()
        self._render = render_fn
        self.workers = workers
        self.capacity = workers + queue
        self.max_pixels = max_pixels
        self._in_flight = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="media-image")
        # Encodes run here, beside the resizes of the same image; they never wait on anything,
        # so the two pools cannot deadlock, and at most 2 x workers threads are runnable.
        self._encoder = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="media-webp")

    @property
    def full(self) -> bool:
        return self._in_flight >= self.capacity

    async def render(self, data: bytes, targets: Sequence[Target]) -> Rendered:
        """Raises Overloaded at once when full, ImageRejected for bytes we do not accept."""
        # Checked and counted on the event loop thread, so no lock is needed.
        if self.full:
            raise Overloaded
        loop = asyncio.get_running_loop()
        job = functools.partial(
            self._render, data, tuple(targets), max_pixels=self.max_pixels, encoder=self._encoder
        )
        self._in_flight += 1
        future = self._executor.submit(job)
        # Released when the thread is done, not when the caller stops waiting: a cancelled
        # request's image still occupies its worker until it finishes.
        future.add_done_callback(lambda _: _call_soon(loop, self._release))
        return await asyncio.wrap_future(future)

    def _release(self) -> None:
        self._in_flight -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._encoder.shutdown(wait=True, cancel_futures=True)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed while the work finished
        loop.call_soon_threadsafe(callback)
