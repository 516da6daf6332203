"""The published AsyncAPI document is the one the event catalogue generates today."""

from __future__ import annotations

import json
from pathlib import Path

from rtmn_shared.events.asyncapi import document
from rtmn_shared.events.catalogue import CATALOGUE
from rtmn_shared.suite import PRODUCERS

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_docs_asyncapi_matches_the_catalogue() -> None:
    published = json.loads((DOCS / "asyncapi.json").read_text())
    assert published == document(PRODUCERS), "run `make docs` and commit docs/"


def test_every_event_type_is_a_channel_with_its_producer() -> None:
    channels = document(PRODUCERS)["channels"]
    assert {c["address"] for c in channels.values()} == set(CATALOGUE)
    assert set(PRODUCERS) <= set(CATALOGUE)
