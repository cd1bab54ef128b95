"""Reading post-mortem JSON documents back, whichever schema version wrote them.

Exports are kept (wikis, tickets, drill folders), so version 1 documents must
stay readable after version 2: ``upgrade`` fills what v1 did not have (the
evidence summaries, empty review sections with their prompts, action items
without owner, due date or tracker) and the v2 renderers take the result.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from bot.core.errors import BadInput
from bot.domain.export import document, evidence
from bot.domain.incidents import review

READABLE = ("1", "2")


def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """A v2 tree from a v1 or v2 tree (a v2 tree comes back unchanged, as a copy)."""
    version = str(doc.get("schema_version", ""))
    if version not in READABLE:
        raise BadInput(f"schema_version must be one of {', '.join(READABLE)}, not `{version or 'missing'}`.",
                       field="schema_version")
    out = copy.deepcopy(doc)
    if version == "2":
        return out
    for key in ("timeline", "diagnosis"):
        for ev in out.get(key, []):
            ev.setdefault("summary", evidence.summary(ev.get("data")))
    for item in out.get("action_items", []):
        for name, value in (("priority", "p2"), ("due_on", None), ("overdue", False), ("tracker", None),
                            ("tracker_key", None), ("tracker_url", None)):
            item.setdefault(name, value)
    out.setdefault("evidence_at_t0", [])  # v2 sections that v1 exports never had
    out.setdefault("changes_before_t0", [])
    slo = out.setdefault("slo", {})
    slo.setdefault("clusters", [])  # fleet incidents came with v2: a v1 incident had one cluster
    slo.setdefault("acknowledged_at", None)
    slo.setdefault("acknowledged_by", None)
    written = review.gather(out.get("timeline", []))
    out["review"] = written
    out["review_prompts"] = [{"section": s.key, "title": s.title, "prompt": s.prompt} for s in review.missing(written)]
    out["$schema"], out["schema_version"] = document.SCHEMA_ID, document.SCHEMA_VERSION
    return out


def load(text: str) -> dict[str, Any]:
    """Parse an exported JSON document of any readable version into a v2 tree."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"not a JSON document: {exc.msg} at line {exc.lineno}.", field="document") from None
    if not isinstance(doc, dict):
        raise BadInput("not a post-mortem document: expected a JSON object at the top.", field="document")
    return upgrade(doc)
