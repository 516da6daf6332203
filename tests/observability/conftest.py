"""promtool, installed once per run by scripts/promtool.sh (Debian's prometheus package)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = ROOT / "scripts" / "promtool.sh"

Promtool = Callable[..., subprocess.CompletedProcess[str]]


def run_promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(PROMTOOL), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,  # the first call may install the package
        check=False,
    )


@pytest.fixture(scope="session")
def promtool() -> Promtool:
    installed = run_promtool("--version")
    assert installed.returncode == 0, installed.stderr
    assert "version 2." in installed.stdout + installed.stderr
    return run_promtool
