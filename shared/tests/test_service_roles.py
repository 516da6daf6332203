"""`python -m <service> ROLE [ROLE ...]`: which roles one process runs."""

from __future__ import annotations

import argparse

import pytest

from rtmn_shared.entry import _roles


def roles(*named: str) -> list[str]:
    return _roles(argparse.ArgumentParser(), named)


def test_several_roles_share_one_process_in_the_order_given_once_each() -> None:
    assert roles("api", "relay", "consumers", "relay") == ["api", "relay", "consumers"]


def test_worker_and_all_stand_for_their_roles() -> None:
    assert roles("worker") == ["relay", "consumers"]
    assert roles("api", "worker") == ["api", "relay", "consumers"]
    assert roles("all") == ["migrate", "api", "relay", "consumers"]


def test_migrate_runs_on_its_own() -> None:
    assert roles("migrate") == ["migrate"]
    with pytest.raises(SystemExit):
        roles("migrate", "relay")
