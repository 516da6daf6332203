"""The providers' own published payloads (see fixtures/README.md), loaded fresh per use."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def load(provider: str, name: str) -> Any:
    """A new parsed copy of fixtures/<provider>/<name>, safe for the caller to mutate."""
    text = resources.files("rtmn_fakes").joinpath("fixtures", provider, name).read_text("utf-8")
    return json.loads(text)


def load_text(provider: str, name: str) -> str:
    return resources.files("rtmn_fakes").joinpath("fixtures", provider, name).read_text("utf-8")
