"""What a procedure file got wrong, with the line: YAML composed with lines, and a validator that collects.

The YAML is *composed* (not just loaded) so every value keeps the line it came from; the
validator walks the plain data with its path, looks the line up and collects every problem
instead of stopping at the first, so an author fixes a file in one go.  The procedure's own
grammar (which keys, which kinds) is in ``loader``; this module knows only shapes and lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import yaml
from yaml.constructor import SafeConstructor

from bot.domain.diagnosis import templating
from bot.core.errors import ConfigError

Path_ = tuple[Any, ...]  # where a value sits in the document: keys and list indexes


@dataclass(frozen=True)
class Problem:
    """One fault in one file, at the line an author would edit."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ProcedureError(ConfigError):
    """One or more problems in procedure files; the message lists them all."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# ------------------------------------------------------------------ YAML with lines
class Composed:
    """Builds plain data from composed YAML nodes, noting each value's line and duplicate keys."""

    def __init__(self) -> None:
        self.lines: dict[Path_, int] = {}
        self.problems: list[tuple[int, str]] = []
        self._constructor = SafeConstructor()

    def value(self, node: yaml.Node, path: Path_) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._constructor.construct_object(key_node, deep=True)
                if isinstance(key, (list, dict)):
                    self.problems.append((key_node.start_mark.line + 1, "a key must be a plain word"))
                    continue
                if key in out:
                    self.problems.append((key_node.start_mark.line + 1, f"`{dotted(path + (key,))}` is given twice"))
                self.lines[path + (key,)] = key_node.start_mark.line + 1
                out[key] = self.value(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)


def dotted(path: Path_) -> str:
    """``checks[2].query``: a path as the author reads it in an error."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out or "(top level)"


class Validator:
    """Shape checks that record a problem with its line and go on, instead of raising at the first."""

    def __init__(self, file: str, lines: dict[Path_, int]) -> None:
        self.file = file
        self.lines = lines
        self.problems: list[Problem] = []

    def line(self, path: Path_) -> int:
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def fail(self, path: Path_, message: str) -> None:
        self.problems.append(Problem(self.file, self.line(path), message))

    # -- shapes
    def mapping(self, value: Any, path: Path_, what: str) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"`{dotted(path)}` must be a mapping ({what}), not {kind_of(value)}")
            return {}
        return value

    def keys(self, value: dict, path: Path_, allowed: Iterable[str], required: Iterable[str] = ()) -> None:
        allowed = tuple(allowed)
        for key in value:
            if key not in allowed:
                where = f" in `{dotted(path)}`" if path else ""
                self.fail(path + (key,), f"unknown key `{key}`{where}; expected one of: {', '.join(allowed)}")
        for key in required:
            if key not in value or value[key] is None:
                self.fail(path, f"missing field `{key}`" + (f" in `{dotted(path)}`" if path else ""))

    def typed(self, value: Any, path: Path_, type_: str) -> bool:
        ok = {
            "str": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "strings": (isinstance(value, list) and all(isinstance(v, str) for v in value)) or isinstance(value, str),
            "names": isinstance(value, list) and all(isinstance(v, str) for v in value),
        }[type_]
        if type_ in ("int", "number", "bool") and templating.is_template(value):
            ok = True  # filled at run time
        if not ok:
            expected = {"str": "a string", "int": "an integer", "number": "a number", "bool": "true or false",
                        "strings": "a list of strings (or a template giving one)",
                        "names": "a list of strings"}[type_]
            self.fail(path, f"`{dotted(path)}` must be {expected}, not {kind_of(value)}")
        return ok

    def template(self, value: Any, path: Path_, *, expression: bool = False) -> None:
        """Check jinja2 syntax of every string inside ``value``."""
        if isinstance(value, str):
            if expression or templating.is_template(value):
                error = templating.syntax_error(value, expression=expression)
                if error:
                    self.fail(path, f"`{dotted(path)}`: jinja2 syntax error: {error}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.template(item, path + (i,))
        elif isinstance(value, dict):
            for key, item in value.items():
                self.template(item, path + (key,))


def brackets_problem(query: str) -> str | None:
    """A cheap PromQL sanity check (Prometheus itself is not asked at load): brackets and quotes match."""
    text = query.replace("{{", "").replace("}}", "").replace("{%", "").replace("%}", "")
    pairs, stack, quote = {")": "(", "]": "[", "}": "{"}, [], None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return f"has an unmatched `{ch}`"
    if quote:
        return f"has an unclosed {quote} quote"
    return f"has an unclosed `{stack[-1]}`" if stack else None


def kind_of(value: Any) -> str:
    """What a wrong value is, in words (``not the string 'x'``)."""
    if value is None:
        return "nothing"
    return {bool: "true/false", int: "a number", float: "a number", str: f"the string {value!r}",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)
