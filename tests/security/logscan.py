"""Finds what must never be in a log line: configured provider secrets, bearer or verification
JWTs, one-time codes, full phone numbers. Used on the lines captured in test_logs.py, and meant
for the fault and load runs' logs as well (`scan(Path("run.log").read_text(), secrets)`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rtmn_shared.logs import JsonFormatter

# Standing alone, like rtmn_shared.logs' phone pattern: digits inside ids and hex do not count.
_EDGE_BEFORE = r"(?<![\w.-])"
_EDGE_AFTER = r"(?![\w.-])"
PATTERNS: dict[str, re.Pattern[str]] = {
    "jwt": re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    # Six digits as a word of their own: a trace or message id that holds six digits in a row
    # is hex, not a code.
    "otp": re.compile(
        r"(?i)(?:\b(?:otp|code)\b\D{0,24}(?<!\w)\d{6}(?!\w))"
        r"|(?:(?<!\w)\d{6}(?!\w)\W{0,4}(?:is your|otp\b|code\b))"
    ),
    "e164 phone": re.compile(_EDGE_BEFORE + r"\+\d{10,15}" + _EDGE_AFTER),
    "indian mobile": re.compile(r"(?<![\w.+-])" + r"(?:91)?[6-9]\d{9}" + _EDGE_AFTER),
}
_MIN_SECRET = 6  # shorter configured values would match ordinary words


@dataclass(frozen=True)
class Finding:
    kind: str
    line: int  # 1-based
    excerpt: str  # the line around the match, with the match itself masked

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind}: {self.excerpt}"


def scan(text: str | Iterable[str], secrets: Iterable[str] = ()) -> list[Finding]:
    """Every secret-looking thing in `text` (one string, or lines), in order."""
    lines = text.splitlines() if isinstance(text, str) else list(text)
    literals = [s for s in dict.fromkeys(secrets) if len(s) >= _MIN_SECRET]
    findings: list[Finding] = []
    for number, line in enumerate(lines, start=1):
        for secret in literals:
            start = line.find(secret)
            if start >= 0:
                findings.append(_finding("configured secret", number, line, start, len(secret)))
        for kind, pattern in PATTERNS.items():
            for match in pattern.finditer(line):
                findings.append(_finding(kind, number, line, match.start(), len(match.group())))
    return findings


def _finding(kind: str, number: int, line: str, start: int, length: int) -> Finding:
    masked = line[:start] + "<" + kind + ">" + line[start + length :]
    left = max(0, start - 60)
    return Finding(kind, number, masked[left : start + len(kind) + 62])


class _Collect(logging.Handler):
    def __init__(self, sink: list[str], service: str, level: int) -> None:
        super().__init__(level)
        self.sink = sink
        self.setFormatter(JsonFormatter(service))

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(self.format(record))


@contextmanager
def captured_logs(service: str = "suite", level: int = logging.INFO) -> Iterator[list[str]]:
    """Every record any logger emits meanwhile at `level` (INFO: what the services run at),
    formatted as the services write them (rtmn_shared.logs.JsonFormatter)."""
    lines: list[str] = []
    handler = _Collect(lines, service, level)
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)
