"""bench/load.py's parts, one concern each:

- client: the load generator's lean HTTP/1.1 client
- fakes: the providers' contract fakes, as processes
- traffic: the payments on a schedule, and their three effects
- shape: the shape the suite has, read from the run (its floor is bench/floor.py's)
- cpu: CPU time by group of processes from /proc, and which groups are the suite's
- sampling: memory and queue depths over time
- report: the tables and the closing JSON line

Importing it puts tests/faults (faults_kit) and tests/security (logscan) on the path.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(_ROOT / "tests/faults"), str(_ROOT / "tests/security")]
