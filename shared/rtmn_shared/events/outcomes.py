"""How a handler says an event could not be applied now: retry it later, or give it up."""

from __future__ import annotations


class Retry(Exception):
    """A transient failure (a provider timeout, a 5xx): deliver again after a growing delay."""


class GiveUp(Exception):
    """A permanent failure: retrying cannot help, so the message goes to the dead-letter queue."""
