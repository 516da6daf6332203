"""An analytics event as every sink receives it: already mapped, allow-listed and bounded."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

# Names the per-user insert ids; fixed, so a resend maps to the same id after a restart.
_CLIENT_IDS = uuid.UUID("5b0c8a52-3f4e-4f8e-9a36-6f1d2f0b7c11")

# Decimals carry display amounts (`revenue`); integers carry money in minor units.
Scalar = str | int | float | bool | Decimal


@dataclass(frozen=True)
class AnalyticsEvent:
    # The id that makes a resend harmless: Mixpanel's $insert_id, our event id.
    insert_id: str
    name: str
    # None for events that belong to no user (each sink says how it sends those).
    user_id: str | None
    time: datetime
    properties: Mapping[str, Scalar]


def client_insert_id(user_id: str, insert_id: uuid.UUID) -> str:
    """The id a client's event is deduplicated under: its own id within its sender's events, so
    one user's id never stands for, or drops, another user's event."""
    return str(uuid.uuid5(_CLIENT_IDS, f"{user_id}\n{insert_id}"))


def _exact(value: Any) -> Any:
    # A Decimal leaves as the JSON number it spells ("499.00"), never through a float.
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(payload: Any) -> bytes:
    return orjson.dumps(payload, default=_exact)
