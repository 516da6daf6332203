"""The providers' own published payloads (see fixtures/README.md), parsed fresh per use."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any


def load(provider: str, name: str) -> Any:
    """A new parsed copy of fixtures/<provider>/<name>, safe for the caller to mutate."""
    return json.loads(load_text(provider, name))


# The fixtures never change while a fake runs; reading one per request was most of the cost of
# a Razorpay order under load (bench/load.py).
@functools.cache
def load_text(provider: str, name: str) -> str:
    return resources.files("rtmn_fakes").joinpath("fixtures", provider, name).read_text("utf-8")
