"""A render that holds chosen images until the test opens the gate: workers that stay busy."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from media.imaging import Rendered, Target, render


class Gate:
    def __init__(self, holds: Callable[[bytes], bool] = lambda _: True) -> None:
        self.holds = holds
        self.open = threading.Event()
        self._lock = threading.Lock()
        self._held = 0

    @property
    def held(self) -> int:
        """Images that reached a worker and are waiting there."""
        with self._lock:
            return self._held

    def __call__(self, data: bytes, targets: Sequence[Target], **options: Any) -> Rendered:
        if self.holds(data):
            with self._lock:
                self._held += 1
            self.open.wait(timeout=30)
        return render(data, targets, **options)
