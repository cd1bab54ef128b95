"""Modules by concept: no module over 400 lines (migrations excepted), no function over 80.

A module that grows past the limit has more than one idea in it; the failure names it (and its
size) so whoever grew it splits it along its seam (see docs/design.md, "Modules by concept").
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("bot", "playbooks", "integrations")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def sources() -> list[Path]:
    return [path for root in ROOTS for path in sorted((REPO / root).rglob("*.py"))
            if "migrations" not in path.relative_to(REPO).parts]


def test_no_module_is_over_400_lines() -> None:
    long = [f"{path.relative_to(REPO)}: {n} lines" for path in sources()
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, (f"modules over {MAX_MODULE_LINES} lines (split each along its seam):\n" + "\n".join(long))


def test_no_function_is_over_80_lines() -> None:
    long = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {n} lines")
    assert not long, (f"functions over {MAX_FUNCTION_LINES} lines (give their parts names):\n" + "\n".join(long))
