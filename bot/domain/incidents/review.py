"""The written part of a post-mortem: impact, contributing factors, what went well, lessons.

People write these from chat while memories are fresh (``/incident impact …``);
each line is an ordinary timeline event of kind ``review.<section>``, so the
post-mortem stays "rendered from the timeline alone" and every entry keeps who
wrote it and when.  The table below is the single declaration: the chat verbs,
the post-mortem's section titles and the prompt shown while a section is empty
all come from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core.errors import BadInput
from bot.core.store import timeline
from bot.domain.incidents.service import Incidents
from bot.core.store.refs import ref_of


@dataclass(frozen=True)
class Section:
    verb: str  # the chat verb
    key: str  # the post-mortem document's key under ``review``
    title: str
    prompt: str  # what to write, shown while the section is empty

    @property
    def kind(self) -> str:
        return f"review.{self.key}"


SECTIONS: tuple[Section, ...] = (
    Section("impact", "impact", "Impact",
            "Who or what was affected, how badly and for how long? `/incident impact <text>`"),
    Section("factor", "contributing_factors", "Contributing factors",
            "What made it possible or worse? `/incident factor <text>`"),
    Section("went-well", "went_well", "What went well",
            "What helped (alerts, runbooks, people)? `/incident went-well <text>`"),
    Section("lesson", "lessons", "Lessons learned",
            "What do we now know that we did not? `/incident lesson <text>`"),
)
BY_VERB = {s.verb: s for s in SECTIONS}
BY_KIND = {s.kind: s for s in SECTIONS}
MAX_LENGTH = 2000


def write(incidents: Incidents, ref: str | int, verb: str, text: str, *, actor: str, source: str) -> tuple[int, Section]:
    """Append one entry to a section; returns the incident id and the section."""
    section = BY_VERB[verb]
    text = (text or "").strip()
    if not text:
        raise BadInput(f"say what to write, e.g. `/incident {verb} <text>`.", field="text")
    if len(text) > MAX_LENGTH:
        raise BadInput(f"the text is {len(text)} characters; keep it under {MAX_LENGTH}.", field="text")
    with incidents.transaction(ref) as (session, row):
        assert row.id is not None
        timeline.record(session, row.id, section.kind, text, at=incidents.clock.now(), actor=actor, source=source,
                        data={"section": section.key})
        return row.id, section


def gather(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The review sections of a post-mortem from its timeline events (already redacted)."""
    out: dict[str, list[dict[str, Any]]] = {s.key: [] for s in SECTIONS}
    for ev in events:
        section = BY_KIND.get(ev["kind"])
        if section is not None:
            out[section.key].append({"text": ev["text"], "by": ev["actor"], "at": ev["at"], "event_id": ev["id"]})
    return out


def missing(review: dict[str, list[Any]]) -> list[Section]:
    """Sections nobody has written yet: the post-mortem and chat prompt for them."""
    return [s for s in SECTIONS if not review.get(s.key)]


def reply_text(incident_id: int, section: Section) -> str:
    return f"Added to {section.title.lower()} of {ref_of(incident_id)}'s post-mortem."
