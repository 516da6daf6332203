"""How a handler says an event could not be applied now: retry it later, or give it up."""

from __future__ import annotations

from collections.abc import Mapping


class Retry(Exception):
    """A transient failure (a provider timeout, a 5xx): deliver again after a growing delay.

    `headers` travel with the retried message and come back in `Delivery.headers`: a handler
    with several effects names there the ones still to do, so one that succeeded is not redone.
    """

    def __init__(self, reason: str = "", *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.headers = dict(headers or {})


class GiveUp(Exception):
    """A permanent failure: retrying cannot help, so the message goes to the dead-letter queue."""
