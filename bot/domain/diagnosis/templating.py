"""Jinja2 for procedures: a sandboxed environment, strict about undefined names.

Procedures are written by people and loaded from files, so templates run in
jinja2's ``ImmutableSandboxedEnvironment`` (no attribute tricks, no mutation
of the context).  ``StrictUndefined`` turns a reference to something missing
(a check that gave no answer, a label the alert lacks) into an error the
runner reports as *unknown*, instead of silently rendering an empty string.
"""

from __future__ import annotations

from typing import Any, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


def _duration(value: Any) -> float:
    return parse_duration(str(value))


ENV.filters["seconds"] = _duration


def parse_duration(text: str) -> float:
    """``"90s"``, ``"5m"``, ``"1h"``, ``"250ms"`` or a number of seconds."""
    text = text.strip()
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0), ("d", 86400.0)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * factor
    return float(text)


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def syntax_error(source: str, *, expression: bool = False) -> str | None:
    """None when ``source`` compiles; otherwise jinja2's sentence."""
    try:
        if expression:
            ENV.compile_expression(source)
        else:
            ENV.parse(source)
    except TemplateSyntaxError as exc:
        return exc.message or str(exc)
    return None


def render(source: Any, context: Mapping[str, Any]) -> Any:
    """Render a template string; lists and mappings are rendered item by item.

    A string that is exactly one ``{{ expression }}`` keeps the expression's
    type (a list of URLs stays a list, a number stays a number), so a
    parameter can be filled from configuration or an earlier result.
    """
    if isinstance(source, str):
        if not is_template(source):
            return source
        stripped = source.strip()
        if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
            return ENV.compile_expression(stripped[2:-2].strip(), undefined_to_none=False)(**context)
        return ENV.from_string(source).render(**context)
    if isinstance(source, list):
        return [render(item, context) for item in source]
    if isinstance(source, Mapping):
        return {key: render(value, context) for key, value in source.items()}
    return source


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    return ENV.compile_expression(expression, undefined_to_none=False)(**context)


def referenced_checks(source: str, *, expression: bool = False) -> set[str]:
    """The ids ``X`` of every ``checks.X`` / ``checks['X']`` in a template or expression."""
    try:
        tree = ENV.parse("{{ " + source + " }}" if expression else source)
    except TemplateSyntaxError:
        return set()
    found: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if not isinstance(node, (nodes.Getattr, nodes.Getitem)):  # find_all is typed as their common base
            continue
        target = node.node
        if isinstance(target, nodes.Name) and target.name == "checks":
            if isinstance(node, nodes.Getattr):
                found.add(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                found.add(node.arg.value)
    return found


def referenced_checks_in(value: Any) -> set[str]:
    """``referenced_checks`` over every string inside lists and mappings."""
    if isinstance(value, str):
        return referenced_checks(value)
    if isinstance(value, list):
        return set().union(*(referenced_checks_in(v) for v in value)) if value else set()
    if isinstance(value, Mapping):
        return set().union(*(referenced_checks_in(v) for v in value.values())) if value else set()
    return set()
