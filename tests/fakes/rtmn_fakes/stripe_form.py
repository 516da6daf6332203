"""Stripe's form encoding (`metadata[k]=v`, `list[0]=x`) back into nested values."""

from __future__ import annotations

import itertools
import re
from typing import Any

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode(items: list[tuple[str, str]]) -> dict[str, Any]:
    """Nested dicts for `a[b]`; lists for numbered or empty brackets, as the SDK sends them."""
    root: dict[str, Any] = {}
    for raw_key, value in items:
        match = _KEY.match(raw_key)
        if match is None:
            root[raw_key] = value
            continue
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node: Any = root
        for part, following in itertools.pairwise(path):
            child: Any = [] if following.isdigit() or following == "" else {}
            node = _child(node, part, child)
        _assign(node, path[-1], value)
    return root


def _child(node: Any, part: str, empty: Any) -> Any:
    if isinstance(node, list):
        index = len(node) if part == "" else int(part)
        while len(node) <= index:
            node.append(None)
        if node[index] is None:
            node[index] = empty
        return node[index]
    return node.setdefault(part, empty)


def _assign(node: Any, part: str, value: str) -> None:
    if isinstance(node, list):
        index = len(node) if part == "" else int(part)
        while len(node) <= index:
            node.append(None)
        node[index] = value
    else:
        node[part] = value
