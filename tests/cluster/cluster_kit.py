"""What the cluster tests and their conftest share."""

from __future__ import annotations

from pathlib import Path

from rtmn_shared.testing.processes import procfile

PROCFILE = Path(__file__).parent / "Procfile.twice"
SPECS = procfile(PROCFILE)
# fault label -> seconds from the fault until its stand-in served (the table's extra column)
TAKEOVER: dict[str, float] = {}
