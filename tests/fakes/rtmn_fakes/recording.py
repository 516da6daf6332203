"""What a fake received, kept for the tests to read while the server keeps running."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy


@dataclass
class RecordedRequest:
    """One request as the fake saw it; `body` is after gzip decoding (except in S3Fake)."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDictProxy[str]
    body: bytes
    json: Any = None
    form: dict[str, str] | None = None
    form_items: list[tuple[str, str]] = field(default_factory=list)
    received_at: float = 0.0
    # Set once answered: the HTTP status, or 0 (base.DROPPED) if the connection was cut.
    status: int | None = None

    @classmethod
    async def from_request(cls, request: web.Request) -> RecordedRequest:
        body = await request.read()
        recorded = cls(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            body=body,
            received_at=time.time(),
        )
        content_type = request.content_type
        if body and (content_type == "application/json" or content_type.endswith("+json")):
            try:
                recorded.json = json.loads(body)
            except ValueError:
                recorded.json = None  # the fake's handler answers the provider's parse error
        elif body and content_type == "application/x-www-form-urlencoded":
            items = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            recorded.form_items = items
            recorded.form = {}
            for key, value in items:
                recorded.form.setdefault(key, value)
        return recorded


Predicate = Callable[[RecordedRequest], bool]


class RequestLog:
    """Thread-safe list of requests; waiters block on a condition, never on sleeps. With `keep`,
    only the last `keep` requests stay (a long load run, where every request kept would grow the
    fake by hundreds of MB and slow its answers with the garbage collector's passes)."""

    def __init__(self, keep: int | None = None) -> None:
        self._items: deque[RecordedRequest] = deque(maxlen=keep)
        self._changed = threading.Condition()

    def append(self, request: RecordedRequest) -> None:
        with self._changed:
            self._items.append(request)
            self._changed.notify_all()

    def mark_answered(self, request: RecordedRequest, status: int) -> None:
        with self._changed:
            request.status = status
            self._changed.notify_all()

    def snapshot(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._items)

    def clear(self) -> None:
        with self._changed:
            self._items.clear()

    def wait_for(
        self, predicate: Predicate, count: int, timeout: float, *, answered: bool = True
    ) -> list[RecordedRequest]:
        """Block until `count` matching requests arrived (and were answered), or time out."""
        deadline = time.monotonic() + timeout

        def matching() -> list[RecordedRequest]:
            found = [r for r in self._items if predicate(r)]
            if answered:
                found = [r for r in found if r.status is not None]
            return found

        with self._changed:
            while len(found := matching()) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"expected {count} matching requests within {timeout}s, got {len(found)}"
                    )
                self._changed.wait(remaining)
            return found


def path_matcher(path_suffix: str | None, method: str | None = None) -> Predicate:
    def match(request: RecordedRequest) -> bool:
        if method is not None and request.method != method.upper():
            return False
        return path_suffix is None or request.path.endswith(path_suffix)

    return match
