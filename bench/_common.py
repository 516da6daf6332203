"""What every benchmark shares: percentiles, the table, and the closing JSON line."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def result_line(
    bench: str, metric: str, value: float, baseline: float, unit: str, **extra: Any
) -> str:
    body = {
        "bench": bench,
        "metric": metric,
        "value": round(value, 2),
        "baseline": round(baseline, 2),
        "ratio": round(value / baseline, 3) if baseline else None,
        "unit": unit,
    }
    body.update({k: round(v, 2) if isinstance(v, float) else v for k, v in extra.items()})
    return json.dumps(body)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
