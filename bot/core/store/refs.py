"""How people name an incident: ``INC-<id>``, written and read here only.

Every layer shows incident references (chat, Slack, the web board, the post-mortem, pages,
PagerDuty's ``dedup_key``, a Kubernetes annotation), so the one format lives at the bottom where
all of them may import it; a change of format is then one edit, and ``parse_ref`` accepts exactly
what ``ref_of`` writes (and the bare number).
"""

from __future__ import annotations

import re

from bot.core.errors import BadInput, NotFound

PREFIX = "INC-"
REF = re.compile(r"^(?:INC-)?(\d+)$", re.IGNORECASE | re.ASCII)
MAX_ID = 2**31 - 1  # ids are 32-bit integers in both databases; a longer number names nothing


def ref_of(incident_id: int | None) -> str:
    """``INC-42`` for incident 42."""
    return f"{PREFIX}{incident_id}"


def parse_ref(ref: str | int) -> int:
    """The incident id a person typed (``INC-42``, ``inc-42`` or ``42``); a clear BadInput otherwise."""
    if isinstance(ref, int):
        return ref
    match = REF.match(ref.strip())
    if not match:
        raise BadInput(f"`{ref}` is not an incident reference; expected {PREFIX}<number>, e.g. {PREFIX}42.",
                       field="incident")
    number = int(match.group(1))
    if number > MAX_ID:
        raise NotFound(f"there is no incident {PREFIX}{match.group(1)[:24]}; incident numbers stop at {MAX_ID}.")
    return number


__all__ = ["MAX_ID", "PREFIX", "REF", "parse_ref", "ref_of"]
