"""Every service has the skeleton the root README names, and its README opens with its map."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from rtmn_shared.service import Service
from rtmn_shared.suite import SERVICES

ROOT = Path(__file__).resolve().parents[1]
EVERY_SERVICE = ("__main__.py", "app.py", "settings.py", "api.py", "domain.py")


def service(name: str) -> Service[Any]:
    found = importlib.import_module(f"{name}.app").SERVICE
    assert isinstance(found, Service)
    return found


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_a_service_has_the_parts_every_service_has(name: str) -> None:
    package = ROOT / "services" / name / name
    assert [part for part in EVERY_SERVICE if not (package / part).is_file()] == []
    migrations = service(name).migrations
    assert migrations == ROOT / "services" / name / "migrations"
    assert sorted(migrations.glob("*.sql")) or (migrations / "README.md").is_file()


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_handlers_live_in_handlers_py_exactly_when_the_service_consumes(name: str) -> None:
    consumes = service(name).build_handlers is not None
    assert (ROOT / "services" / name / name / "handlers.py").is_file() == consumes


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_a_service_readme_opens_with_where_things_are(name: str) -> None:
    home = ROOT / "services" / name
    text = (home / "README.md").read_text()
    first_section = re.search(r"^## .*$", text, re.MULTILINE)
    assert first_section is not None
    assert first_section.group() == "## Where things are"
    table = text[first_section.end() :].lstrip("\n").split("\n\n")[0].splitlines()
    assert table[:2] == ["| concern | module |", "|---|---|"]
    named = {p for row in table[2:] for p in re.findall(r"`([\w./-]+/[\w./-]*)`", row)}
    missing = [p for p in sorted(named) if not ((home / p).exists() or (home / name / p).exists())]
    assert missing == []
