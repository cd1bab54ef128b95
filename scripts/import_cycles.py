"""List import cycles between the modules of our packages (exit 1 if there is any).

import-linter's layers contract orders packages, but a cycle between two
modules of one package (a.py imports b.py which imports a.py) passes it: the
two can then only be understood, tested and split together.  This script
builds the import graph with grimp (import-linter's engine) and prints every
strongly connected component of more than one module, with the imports that
close it, so a cycle is named and can be broken by moving the shared piece
down.  Imports inside functions count: they are cycles deferred, not removed.

    .venv/bin/python scripts/import_cycles.py [PACKAGE ...]   # default: bot playbooks integrations
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import grimp

ROOTS = ("bot", "playbooks", "integrations")


def strongly_connected(nodes: Iterable[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph is a few hundred modules deep at most)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(edges.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(edges.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def cycles(roots: Iterable[str] = ROOTS) -> list[tuple[list[str], list[str]]]:
    """Every module cycle under ``roots``: (its modules, the imports between them as 'a:line -> b')."""
    roots = tuple(roots)
    graph = grimp.build_graph(*roots)
    modules = {m for m in graph.modules if m.split(".")[0] in roots}
    edges = {m: {t for t in graph.find_modules_directly_imported_by(m) if t in modules} for m in modules}
    out = []
    for component in strongly_connected(modules, edges):
        members = set(component)
        imports = sorted(
            f"{a}:{detail['line_number']} -> {b}"
            for a in component for b in sorted(edges[a] & members)
            for detail in graph.get_import_details(importer=a, imported=b)
        )
        out.append((component, imports))
    return out


def main(argv: list[str]) -> int:
    found = cycles(argv or ROOTS)
    for component, imports in found:
        print(f"cycle of {len(component)} modules: {', '.join(component)}")
        for line in imports:
            print(f"    {line}")
    print(f"{len(found)} import cycle(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
