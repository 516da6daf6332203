"""Fixtures of the cross-service security checks; their helpers live in security_kit.py."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from rtmn_shared.testing.infra import Suite

sys.path.insert(0, str(Path(__file__).parent))

from security_kit import Fleet


@pytest.fixture(scope="session")
async def fleet(suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    """Each service started the first time a test asks for it, all stopped at the end."""
    async with AsyncExitStack() as stack:
        yield Fleet(stack, tmp_path_factory.mktemp("security"))
