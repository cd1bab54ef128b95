"""The code keeps its own shape: public surfaces, no reach-ins, no import cycles.

import-linter (pyproject.toml) orders the packages; these checks hold what it cannot:

* every package says what it is for (a docstring) and what others may use (``__all__``: names,
  or the modules others may import), and callers outside a package stay on that surface;
* nobody reaches into another module's ``_private`` names (``from a import _x``, ``obj._x`` for an
  ``_x`` the module does not define itself): what is needed elsewhere gets a public name;
* no two modules import each other, even through a function-level import.

A failure names the file, the line and what to do, so whoever adds the import sees the rule.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("bot", "playbooks", "integrations")
SKIPPED = ("migrations",)  # alembic's revision files import nothing of ours and are loaded by alembic


@dataclass(frozen=True)
class Source:
    module: str
    path: Path
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> list[Source]:
    found = []
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            if not any(s in path.relative_to(REPO).parts for s in SKIPPED):
                found.append(Source(module_name(path), path, ast.parse(path.read_text(), str(path))))
    return found


SOURCES = sources()
MODULES = {s.module for s in SOURCES}
PACKAGES = {s.module: s for s in SOURCES if s.is_package}


def declared_all(package: Source) -> set[str] | None:
    """The literal ``__all__`` of a package's ``__init__`` (None when it has none)."""
    for node in package.tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and isinstance(value, (ast.List, ast.Tuple)):
            return {e.value for e in value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return None


def imports(source: Source) -> Iterator[tuple[int, str, str | None]]:
    """(line, module imported, name imported from it or None) for every import of our packages."""
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = source.module.split(".") if source.is_package else source.module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                if f"{module}.{alias.name}" in MODULES:
                    yield node.lineno, f"{module}.{alias.name}", None
                else:
                    yield node.lineno, module, alias.name


def where(source: Source) -> Path:
    return source.path.relative_to(REPO) if source.path.is_relative_to(REPO) else source.path


def inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_every_package_says_what_it_is_for_and_what_others_may_use() -> None:
    missing = [f"{where(p)}: " + ("no docstring" if ast.get_docstring(p.tree) is None else "no __all__")
               for p in PACKAGES.values()
               if ast.get_docstring(p.tree) is None or declared_all(p) is None]
    assert not missing, "every package's __init__.py needs a docstring and an __all__:\n" + "\n".join(missing)


def surface_problems(checked: list[Source]) -> list[str]:
    """Imports from outside a package of something its ``__all__`` does not list."""
    problems = []
    for source in checked:
        for line, target, name in imports(source):
            if target.split(".")[0] not in ROOTS:
                continue
            parts = target.split(".")
            # each package on the way down to the target that the importer is not part of
            for depth in range(2, len(parts) + 1):
                package = ".".join(parts[:depth - 1])
                if package in ROOTS or package not in PACKAGES or inside(source.module, package):
                    continue
                child = parts[depth - 1]
                if child not in (declared_all(PACKAGES[package]) or set()):
                    problems.append(f"{where(source)}:{line}: imports {target}, but `{child}` is not "
                                    f"in {package}.__all__ (import the surface, or make the module public there)")
            if name and target in PACKAGES and target not in ROOTS and not inside(source.module, target):
                if name not in (declared_all(PACKAGES[target]) or set()):
                    problems.append(f"{where(source)}:{line}: imports {name} from {target}, "
                                    f"which is not in its __all__")
    return sorted(set(problems))


def test_callers_outside_a_package_use_its_public_surface() -> None:
    problems = surface_problems(SOURCES)
    assert not problems, "\n".join(problems)


def defined_privates(tree: ast.Module) -> set[str]:
    """The ``_names`` a module defines itself: functions, classes, assignments, attributes it sets."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {n for n in names if n.startswith("_")}


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def reach_in_problems(checked: list[Source]) -> list[str]:
    """``from a import _x`` across modules, and ``obj._x`` for an ``_x`` the module does not define."""
    problems = []
    for source in checked:
        own = defined_privates(source.tree)
        for line, target, name in imports(source):
            if name and is_private(name) and target != source.module and target.split(".")[0] in ROOTS:
                problems.append(f"{where(source)}:{line}: `from {target} import {name}` "
                                f"(give it a public name where it is defined)")
        for node in ast.walk(source.tree):
            if (isinstance(node, ast.Attribute) and is_private(node.attr) and node.attr not in own
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                problems.append(f"{where(source)}:{node.lineno}: `{ast.unparse(node)}` uses another "
                                f"module's private name (make what callers need public, with a docstring)")
    return problems


def test_no_module_reaches_into_another_module_s_private_names() -> None:
    problems = reach_in_problems(SOURCES)
    assert not problems, "\n".join(problems)


def test_no_two_modules_import_each_other() -> None:
    spec = importlib.util.spec_from_file_location("import_cycles", REPO / "scripts" / "import_cycles.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_cycles", script)
    spec.loader.exec_module(script)
    found = script.cycles(ROOTS)
    assert not found, "import cycles (move the shared piece into a module both can import):\n" + "\n".join(
        f"{', '.join(modules)}:\n    " + "\n    ".join(lines) for modules, lines in found)


def test_the_checks_see_a_reach_in_and_an_import_past_the_surface(tmp_path: Path) -> None:
    """The checks above are only worth something if they notice a violation: feed them some."""
    bad = ast.parse("from bot.domain.incidents.service import _hidden\nfrom bot.domain.slo import mass\n"
                    "from bot.domain.incidents.service import Incidents\n\ndef f(other):\n    return other._secret\n")
    source = Source("bot.domain.export.bad", tmp_path / "bad.py", bad)
    surface = surface_problems([source])
    assert len(surface) == 1 and "`mass` is not in bot.domain.slo.__all__" in surface[0]
    reach = reach_in_problems([source])
    assert any("from bot.domain.incidents.service import _hidden" in p for p in reach)
    assert any("other._secret" in p for p in reach) and len(reach) == 2
    inside_package = Source("bot.domain.slo.watcher2", tmp_path / "w.py", ast.parse("from bot.domain.slo import mass\n"))
    assert surface_problems([inside_package]) == []  # a package's own modules may use each other
