"""Each module imports only downwards: no import circle in the library, the fakes or a service.

Every import counts, at the top, inside a function or under TYPE_CHECKING: a circle hidden by
any of them is still one module that cannot be read without the other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "rtmn_shared": ROOT / "shared" / "rtmn_shared",
    "rtmn_fakes": ROOT / "tests" / "fakes" / "rtmn_fakes",
    **{p.name: p for p in sorted(ROOT.glob("services/*/*")) if (p / "__init__.py").exists()},
}


def modules(package: Path) -> dict[str, Path]:
    found = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name: str, path: Path, known: Mapping[str, Path]) -> set[str]:
    """The modules of `known` that `name` imports (a name imported from a package counts as
    its submodule when it is one, else as the package)."""

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets |= {owner(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in known else owner(base))
    return {t for t in targets if t is not None and t != name}


def circles(graph: Mapping[str, set[str]]) -> Iterator[list[str]]:
    """One circle through each strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> Iterator[list[str]]:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                yield from visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = stack[stack.index(module) :]
            del stack[stack.index(module) :]
            if len(group) > 1:
                yield _walk(module, set(group), graph)

    for module in sorted(graph):
        if module not in index:
            yield from visit(module)


def _walk(start: str, group: set[str], graph: Mapping[str, set[str]]) -> list[str]:
    path = [start]
    while True:
        step = min(m for m in graph[path[-1]] if m in group)
        if step in path:
            return [*path[path.index(step) :], step]
        path.append(step)


def graph_of(package: Path) -> dict[str, set[str]]:
    known = modules(package)
    return {name: imported(name, path, known) for name, path in known.items()}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_module_imports_itself_back(package: str) -> None:
    found = [" -> ".join(c) for c in circles(graph_of(PACKAGES[package]))]
    assert found == []


def test_a_circle_hidden_in_a_function_or_type_checking_is_found(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    (lib / "cli").mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "cli" / "__init__.py").write_text("")
    (lib / "service.py").write_text("def main():\n    from lib.cli.secrets import run\n")
    (lib / "cli" / "secrets.py").write_text("from ..service import main\n")
    (lib / "db.py").write_text("from lib import settings\n")
    (lib / "settings.py").write_text("from lib.secrets import KeyRing\n")
    (lib / "secrets.py").write_text("if TYPE_CHECKING:\n    from lib.db import Pool\n")
    found = sorted(" -> ".join(c) for c in circles(graph_of(lib)))
    assert found == [
        "lib.cli.secrets -> lib.service -> lib.cli.secrets",
        "lib.db -> lib.settings -> lib.secrets -> lib.db",
    ]
