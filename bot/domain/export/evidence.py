"""One line of evidence for people; the full data stays in the document, folded away.

A timeline event's evidence can be a large nested mapping (a diagnosis
check's query and samples, a run's plan).  Reviewers scan the timeline, so
each row shows a short sentence: the keys that say most first (check, result,
value, stage …), scalars as ``key=value``, nested values as their size, cut at
``LIMIT`` characters.  The HTML folds the full JSON into ``<details>``.
"""

from __future__ import annotations

import json
from typing import Any

LIMIT = 160
# keys worth reading first, in this order; the rest follow alphabetically
FIRST = ("check", "result", "verdict", "value", "threshold", "stage", "from", "to", "run_id", "playbook", "user",
         "role", "suspect", "conclusion", "sop", "severity", "cluster", "component", "reason", "via", "error")
_SKIP = frozenset({"started_at", "deadline", "section", "action_id"})


def _shown(value: Any) -> str:
    if isinstance(value, str):
        text = " ".join(value.split())
        return text if len(text) <= 60 else text[:57] + "…"
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, dict):
        return f"{{{len(value)} fields}}"
    if isinstance(value, list | tuple):
        return f"[{len(value)} items]"
    return str(value)


def summary(data: dict[str, Any] | None, limit: int = LIMIT) -> str:
    """'check=apiserver-list-latency; result=fail; value=41.0; query=…' in at most ``limit`` characters."""
    if not data:
        return ""
    keys = [k for k in FIRST if k in data] + sorted(k for k in data if k not in FIRST and k not in _SKIP)
    parts = [f"{k}={_shown(data[k])}" for k in keys if data[k] not in (None, "", {}, [])]
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1].rstrip("; ") + "…"
