"""The incident card and the other composite messages, built from domain reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.chat.messages import (Block, Bullets, Button, Buttons, ClockLine, Clocks, Code, Fields, Heading, Paragraph,
                               Reply)
from bot.core.clock import human_duration
from bot.domain.incidents import acks, fleet
from bot.domain.incidents.service import IncidentView
from bot.core.store.refs import ref_of
from bot.core.store.models import Incident, PlaybookRun, TimelineEvent

STATE_EMOJI = {
    "detected": "🔴", "notified": "🔴", "diagnosing": "🟠", "diagnosed": "🟠", "mitigating": "🟡",
    "mitigated": "🟢", "resolved": "✅", "closed": "✅", "cancelled": "⚪",
}
VERDICT_MARK = {"met": "✓", "breached": "✗", "running": "…", "warning": "!", "stopped": "–"}


def fmt_time(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "—"


def card(view: IncidentView, pending_runs: Sequence[PlaybookRun] = ()) -> Reply:
    """The live incident card: state, severity, commander, clocks, cause, pending runs."""
    inc = view.incident
    title = f"{STATE_EMOJI.get(inc.state, '')} {ref_of(inc.id)} {inc.title}".strip()
    pairs = [
        ("State", inc.state),
        ("Severity", inc.severity),
        ("Cluster", inc.cluster + (f" / {inc.component}" if inc.component else "")),
        ("Commander", f"@{view.commander}" if view.commander else "nobody yet — `/incident ack`"),
        ("Started (T0)", fmt_time(inc.started_at)),
        ("Detected", fmt_time(inc.detected_at)),
        ("Acknowledged", acks.describe(inc)),
    ]
    others = [f"{role}: " + ", ".join(f"@{u}" for u in users) for role, users in view.roles.items() if role != "commander"]
    blocks: list[Block] = [Heading(title), Fields(tuple(pairs))]
    if others:
        blocks.append(Paragraph("; ".join(others)))
    blocks.append(Clocks(tuple(ClockLine(c.stage, c.verdict, c.describe()) for c in view.clocks)))
    if len(view.clusters) > 1:
        blocks.extend(cluster_table(view))
    changed = (inc.extra or {}).get("changes_before_t0")
    if changed:  # the change watch's nearest changes before T0 (bot.compose.app.evidence)
        blocks.append(Paragraph("Changed before T0: " + "; ".join(changed)))
    if inc.root_cause:
        blocks.append(Paragraph(f"Root cause: {inc.root_cause}"))
    if inc.mitigation:
        blocks.append(Paragraph(f"Mitigation: {inc.mitigation}"))
    for run in pending_runs:
        blocks.append(Paragraph(f"RUN-{run.id} {run.playbook} ({run.risk} risk) awaits approval — plan {run.plan_hash[:12]}"))
        blocks.append(approval_buttons(run))
    text = f"{ref_of(inc.id)} [{inc.state}] {inc.title}"
    return Reply(text=text, blocks=blocks, incident_id=inc.id)


def _since(at: datetime | None, t0: datetime) -> str:
    return "—" if at is None else "+" + human_duration((at - t0).total_seconds())


def cluster_table(view: IncidentView) -> list[Block]:
    """A fleet incident's clusters: T0 and each stage (time after that cluster's T0), verdict per cluster and overall."""
    head = ("cluster", "state", "T0", "detected", "notified", "diagnosed", "mitigated", "1-5-10")
    rows = [head] + [(c.name, c.state, c.started_at.strftime("%H:%M:%S"), _since(c.detected_at, c.started_at),
                      _since(c.notified_at, c.started_at), _since(c.diagnosed_at, c.started_at),
                      _since(c.mitigated_at, c.started_at), f"{VERDICT_MARK.get(c.verdict, '')} {c.verdict}")
                     for c in view.clusters]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    table = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
    overall = fleet.worst(c.verdict for c in view.clusters)
    return [Paragraph(f"{len(view.clusters)} clusters; 1-5-10 overall (the worst cluster): {overall}"), Code(table)]


def incident_list(incidents: Sequence[Incident]) -> Reply:
    if not incidents:
        return Reply.line("No active incidents.")
    items = tuple(f"{ref_of(i.id)} [{i.state}] {i.severity} {i.cluster}: {i.title}" for i in incidents)
    return Reply(text=f"{len(incidents)} active incident(s)", blocks=[Heading("Active incidents"), Bullets(items)])


def event_line(event: TimelineEvent) -> str:
    return f"{event.at.strftime('%H:%M:%S')} [{event.source}] {event.actor}: {event.text}"


def timeline_reply(incident: Incident, events: Sequence[TimelineEvent], limit: int = 200) -> Reply:
    shown = list(events)[-limit:]
    items = tuple(event_line(e) for e in shown)
    head = f"Timeline of {ref_of(incident.id)} ({len(events)} events" + (f", last {limit} shown)" if len(events) > limit else ")")
    return Reply(text=head, blocks=[Heading(head), Bullets(items)], incident_id=incident.id)


def approval_buttons(run: PlaybookRun) -> Buttons:
    """Approve carries the plan it was shown with (``RUN:hash``): a stale button cannot approve a newer plan."""
    return Buttons((Button("Approve", "run_approve", f"{run.id}:{run.plan_hash[:16]}", "primary"),
                    Button("Reject", "run_reject", str(run.id), "danger")), block_id=f"run-{run.id}")
