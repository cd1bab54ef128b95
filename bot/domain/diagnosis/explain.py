"""Plain-text views of procedures and outcomes, for authors (``incident-bot sop``)."""

from __future__ import annotations

import json

from bot.domain.diagnosis.checks import KINDS
from bot.domain.diagnosis.model import Procedure
from bot.domain.diagnosis.runner import Outcome


def applies_to(proc: Procedure) -> str:
    a = proc.applies_to
    parts = []
    if a.alerts:
        parts.append("alerts " + ", ".join(a.alerts))
    if a.labels:
        parts.append("labels " + ", ".join(f"{k}={v}" for k, v in a.labels.items()))
    if a.components:
        parts.append("components " + ", ".join(a.components))
    if a.fallback:
        parts.append("anything no other procedure fits")
    return "; ".join(parts)


def listing(procedures: list[Procedure]) -> list[str]:
    lines = []
    for p in sorted(procedures, key=lambda p: p.name):
        playbooks = ", ".join(p.playbooks) or "none"
        lines.append(f"{p.name}  —  {p.title}")
        lines.append(f"    applies to: {applies_to(p)}" + (f" (priority {p.priority})" if p.priority else ""))
        lines.append(f"    checks: {', '.join(f'{c.id} ({c.kind})' for c in p.checks)}")
        lines.append(f"    playbooks: {playbooks}; escalations: "
                     f"{', '.join(c.id for c in p.conclusions.values() if c.escalate) or 'none'}")
        lines.append(f"    file: {p.path}")
    return lines


def kinds() -> list[str]:
    lines = []
    for kind in KINDS.values():
        fields = ", ".join(f"{n}{'*' if f.required else ''}" + (f" ({'|'.join(f.choices)})" if f.choices else "")
                           for n, f in kind.fields.items())
        lines.append(f"{kind.name}: {kind.doc}; fields: {fields} (* required; all: id*, kind*, description, timeout)")
    return lines


def outcome(o: Outcome, *, explain: bool) -> list[str]:
    lines = [f"procedure {o.procedure.name} — {o.procedure.title} ({o.procedure.path})"]
    if explain:
        lines.append("checks:")
        for c in o.checks:
            mark = "✓" if c.known else "?"
            lines.append(f"  {mark} {c.id} ({c.kind}, {c.seconds:.2f}s): " + (c.summary if c.known else
                                                                              f"unknown — {c.error}"))
            if "query" in c.evidence:
                lines.append(f"      query: {' '.join(str(c.evidence['query']).split())}")
            if "probes" in c.evidence:
                for p in c.evidence["probes"]:
                    lines.append(f"      GET {p['url']} -> {p['status'] if p['status'] is not None else p['error']}")
        lines.append("path:")
        lines += [f"  {s.sentence()}" for s in o.path] or ["  (the tree starts at a conclusion)"]
    lines.append(f"conclusion: {o.conclusion.id}")
    lines.append(f"cause: {o.cause}")
    if o.escalate:
        lines.append("action: escalate to people (no playbook)" + (f" — {o.problem}" if o.problem else ""))
    else:
        lines.append(f"action: playbook {o.playbook} {json.dumps(o.params, sort_keys=True)}")
    return lines
