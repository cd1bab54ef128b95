"""Rendering the (redacted) document tree as Markdown, JSON or HTML.

Markdown and HTML are jinja2 templates next to this module; HTML autoescapes
everything (the SVG chart included), Markdown escapes table cells through the
``cell`` filter.  JSON is the tree itself.  Output ends with one newline and
depends on nothing but the tree, so the same incident renders byte for byte
the same.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from bot.domain.export import chart, evidence as summaries, timefmt
from bot.domain.export import sparkline
from bot.domain.incidents import review

TEMPLATES = Path(__file__).parent / "templates"
VERDICT_MARK = {"met": "✅ met", "breached": "❌ breached", "never-reached": "⚪ never reached"}
_BACKTICKS = re.compile(r"`+")


def evidence(data: dict[str, Any] | None) -> str:
    """Compact one-line evidence: key=value for scalars, JSON for nested values."""
    if not data:
        return ""
    parts = []
    for key, value in sorted(data.items()):
        if isinstance(value, str):
            shown = value
        elif value is None or isinstance(value, bool | int | float):
            shown = json.dumps(value)
        else:
            shown = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        parts.append(f"{key}={shown}")
    return "; ".join(parts)


def pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2)


def compact(value: Any) -> str:
    """The full evidence folded under a summary: one-line JSON (C encoder, fast on 50,000 rows)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


def link(url: Any) -> str:
    """An http(s) URL safe to put in ``href``; anything else (javascript:, data:) is no link at all."""
    if isinstance(url, str) and url.strip().lower().startswith(("http://", "https://")):
        return url.strip()
    return ""


def md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell (GFM): no pipes, no newlines, no raw HTML."""
    if value is None or value == "":
        return "—"
    text = str(value)
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r\n", "<br>").replace("\n", "<br>"))


def md_code(value: Any) -> str:
    """An inline code span that survives backticks and pipes in the text (table-safe)."""
    if value is None or value == "":
        return ""
    text = str(value).replace("\r\n", " ").replace("\n", " ").replace("|", "\\|")
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_fence(value: str | None) -> str:
    """A fence longer than any backtick run inside the block."""
    longest = max((len(m) for m in _BACKTICKS.findall(value or "")), default=0)
    return "`" * max(3, longest + 1)


def _filters() -> dict[str, Any]:
    return {
        "when": timefmt.display, "hms": timefmt.clock_time, "dur": timefmt.duration, "offset": timefmt.offset,
        "evidence": evidence, "pretty": pretty, "compact": compact, "link": link, "summary": summaries.summary, "verdict": lambda v: VERDICT_MARK.get(v, v),
        "sparkline": sparkline.sparkline,
        "cell": md_cell, "code": md_code, "fence": md_fence, "people": lambda users: ", ".join(f"@{u}" for u in users) or "—",
    }


@lru_cache(maxsize=2)
def environment(kind: str) -> jinja2.Environment:
    """The jinja2 environment of this package's templates (``html`` autoescapes); the web board reuses it."""
    return _environment(kind)


@lru_cache(maxsize=2)
def _environment(kind: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=(kind == "html"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(_filters())
    return env


def _finish(text: str) -> str:
    return text.rstrip("\n") + "\n"


def markdown(doc: dict[str, Any]) -> str:
    return _finish(_environment("md").get_template("postmortem.md.j2").render(doc=doc, sections=review.SECTIONS))


def html(doc: dict[str, Any]) -> str:
    return _finish(_environment("html").get_template("postmortem.html.j2").render(
        doc=doc, chart=chart.build(doc), sections=review.SECTIONS))


# lists written one item per line: readable, diff-friendly, and serialised by the C encoder
# (indented JSON goes through the pure-Python encoder, several times slower on 50,000 events)
_ONE_PER_LINE = frozenset({"timeline", "diagnosis"})


def as_json(doc: dict[str, Any]) -> str:
    """Indented JSON, except that timeline events take one line each."""
    parts = []
    for key, value in doc.items():
        name = json.dumps(key, ensure_ascii=False)
        if key in _ONE_PER_LINE and isinstance(value, list) and value:
            items = ",\n    ".join(json.dumps(item, ensure_ascii=False) for item in value)
            parts.append(f"  {name}: [\n    {items}\n  ]")
        else:
            text = json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\n  ")
            parts.append(f"  {name}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


RENDERERS = {"md": markdown, "json": as_json, "html": html}
