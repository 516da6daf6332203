"""An analytics event as every sink receives it: already mapped, allow-listed and bounded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

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


def _exact(value: Any) -> Any:
    # A Decimal leaves as the JSON number it spells ("499.00"), never through a float.
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(payload: Any) -> bytes:
    return orjson.dumps(payload, default=_exact)
