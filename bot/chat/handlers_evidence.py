"""`/incident evidence [INC]`: the evidence frozen at T0 and the changes before it, in chat.

One line per section (what was seen, or the recorded gap), then the changes
nearest to T0.  The full data is in the export (``evidence_at_t0``,
``changes_before_t0``); chat shows what a commander reads at a glance.
"""

from __future__ import annotations

from typing import Any, Mapping

from bot.chat.dispatcher import ChatContext, Dispatcher
from bot.chat.grammar import Command
from bot.chat.messages import Bullets, Heading, Paragraph, Reply
from bot.core.clock import utc
from bot.domain.diagnosis import changes as change_log
from bot.domain.diagnosis import t0_evidence
from bot.core.store.refs import ref_of


def section_line(section: str, status: str, data: Mapping[str, Any], error: str | None) -> str:
    """``etcd: leader 8e9e05c52164694d, term 3, 3/3 members healthy`` or ``etcd: evidence unavailable: ...``."""
    if status == "unavailable":
        return f"{section}: {error or 'evidence unavailable'}"
    cut = " (truncated to the size cap)" if status == "truncated" else ""
    if section == "etcd":
        healthy = sum(1 for m in data.get("members", []) if m.get("healthy"))
        text = f"leader {data.get('leader') or 'none'}, term {data.get('term')}, {healthy}/{len(data.get('members', []))} members healthy"
    elif section == "readyz":
        text = ", ".join(f"{a['apiserver']} {a['status'] if a['status'] is not None else a['error']}"
                         for a in data.get("apiservers", []))
    elif section == "apf":
        rejected = data.get("rejected_total") or {}
        total = sum(v for v in rejected.values() if isinstance(v, (int, float)))
        text = (f"{len(data.get('flow_schemas', []))} FlowSchemas, {len(data.get('priority_levels', []))} priority "
                f"levels, {total:g} requests rejected so far")
    elif section == "events":
        warnings = [e for e in data.get("events", []) if e.get("type") == "Warning"]
        text = f"{len(data.get('events', []))} recent Events ({len(warnings)} warnings)" + (
            f", latest warning: {warnings[0]['reason']} {warnings[0]['object']}: {warnings[0]['message'][:80]}"
            if warnings else "")
    elif section == "prometheus":
        text = (f"{len(data.get('series', []))} series of {len(data.get('queries', []))} queries over "
                f"{data.get('start', '?')[11:19]}–{data.get('end', '?')[11:19]} UTC")
    elif section == "changes":
        text = f"{len(data.get('changes', []))} changes in the {int(data.get('window_seconds', 1800)) // 60} minutes before T0"
    else:
        text = f"{len(data)} fields"
    return f"{section}: {text}{cut}"


def evidence(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    ref = d.incident_ref(ctx, cmd)
    incident = d.services.incidents.get(ref)
    settings = d.services.settings
    rows = t0_evidence.sections_of(d.services.db, incident.id)
    lines = tuple(section_line(r.section, r.status, r.data, r.error) for r in rows if r.section != "changes")
    changes = change_log.before_t0(d.services.db, incident.cluster, utc(incident.started_at),
                                   window_seconds=settings.evidence.changes_window_seconds,
                                   component=incident.component, limit=10)
    head = f"{ref_of(incident.id)} evidence at T0 ({utc(incident.started_at).strftime('%H:%M:%S')} UTC)"
    blocks: list[Any] = [Heading(head)]
    blocks.append(Bullets(lines) if lines else Paragraph("No evidence stored yet: it is taken in the background "
                                                         "right after the incident opens (Prometheus once T0 + "
                                                         f"{int(settings.evidence.after_seconds)}s has passed)."))
    blocks.append(Paragraph("Changed before T0:" if changes else
                            f"Changed before T0: nothing seen in the {int(settings.evidence.changes_window_seconds) // 60} "
                            "minutes before."))
    if changes:
        blocks.append(Bullets(tuple(change_log.sentence(c) for c in changes)))
    text = head + (f"; changed before T0: {change_log.sentence(changes[0])}" if changes else "")
    return Reply(text=text, blocks=blocks, incident_id=incident.id)


def register(dispatcher: Dispatcher) -> None:
    dispatcher.register("evidence", evidence)
