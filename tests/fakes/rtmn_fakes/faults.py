"""Faults a test arms on a fake; each one is spent on the next matching requests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from rtmn_fakes.recording import RecordedRequest

FaultKind = Literal["fail", "delay", "drop", "malformed"]
RequestFilter = Callable[[RecordedRequest], bool]


@dataclass
class Fault:
    kind: FaultKind
    remaining: int
    path: str | None = None
    method: str | None = None
    where: RequestFilter | None = None
    status: int = 503
    body: Any = None
    retry_after: float | str | None = None
    seconds: float = 0.0
    # For drops: run the handler first, so the provider's state changed but the answer was lost.
    after_handling: bool = False
    skip: int = 0  # matching requests to let through before the fault starts

    def matches(self, request: RecordedRequest) -> bool:
        if self.method is not None and request.method != self.method.upper():
            return False
        if self.path is not None and not request.path.endswith(self.path):
            return False
        return self.where is None or self.where(request)


class FaultQueue:
    """Faults in the order they were armed; the first one matching a request is spent on it."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("a fault must apply to at least one request")
        with self._lock:
            self._faults.append(fault)

    def take(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
            return None

    def pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
