"""The 1-5-10 report as Markdown, JSON or HTML (charts as inline SVG; no script, no external file).

``incident-bot report`` and ``GET /api/report`` render the tree of
``bot.domain.export.report``; the web board's Reports page includes the same HTML body.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.core.clock import human_duration
from bot.core.config import Settings
from bot.core.errors import BadInput
from bot.domain.export import render, report
from bot.domain.incidents import search

MEDIA_TYPES = {"md": "text/markdown; charset=utf-8", "json": "application/json", "html": "text/html; charset=utf-8"}


def _pct(ratio: float | None) -> str:
    return "—" if ratio is None else f"{100 * ratio:.0f} %"


def _group_md(title: str, group: dict[str, Any], budgets: dict[str, float]) -> list[str]:
    lines = [f"## {title}: {group['count']} incident{'' if group['count'] == 1 else 's'}", ""]
    if not group["count"]:
        return lines + ["None in this window.", ""]
    lines += ["| Stage | Median from T0 | p90 from T0 | Budget | In budget | Breached |", "| --- | --- | --- | --- | --- | --- |"]
    for name in ("notify", "diagnose", "mitigate"):
        s = group["stages"][name]
        ratio = f"{_pct(s['met_ratio'])} ({s['met']}/{s['decided']})" if s["met_ratio"] is not None else "—"
        lines.append(f"| {s['title']} | {human_duration(s['median_seconds'])} | {human_duration(s['p90_seconds'])} | "
                     f"{human_duration(budgets[name])} | {ratio} | {s['breached']} |")
    for m in group["milestones"].values():
        lines.append(f"| {m['title'].capitalize()} | {human_duration(m['median_seconds'])} | "
                     f"{human_duration(m['p90_seconds'])} | — | — | — |")
    lines += ["", f"All three stages in budget: {group['all_three_met']} of {group['count']}.", ""]
    for key, label in (("by_cause", "cause"), ("by_cluster", "cluster")):
        items = group["breaches"][key]
        shown = ", ".join(f"{b[label]} {b['count']}" for b in items) or "none"
        lines.append(f"Breaches by {label}: {shown}.")
    return lines + [""]


def _budgets_md(rows: list[dict[str, Any]]) -> list[str]:
    """Error budget left per cluster and objective: what customers felt, beside how fast incidents went."""
    lines = ["## Error budgets left", ""]
    if not rows:
        return lines + ["No probe results in this window (no customer probes configured, or none ran).", ""]
    lines += ["| Cluster | Objective | Target | Good | Events | Budget left | Burn, last hour |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for b in rows:
        good = "—" if b["good_ratio"] is None else f"{100 * b['good_ratio']:.3f} %"
        left = "—" if b["budget_left"] is None else f"{100 * b['budget_left']:.0f} %"
        burn = "—" if b["burn_rate_last_hour"] is None else f"{b['burn_rate_last_hour']:.1f}x"
        lines.append(f"| {b['cluster']} | {b['objective']} | {100 * b['target']:.2f} % | {good} | {b['events']} | "
                     f"{left} | {burn} |")
    return lines + [""]


def markdown(tree: dict[str, Any]) -> str:
    w = tree["window"]
    lines = ["# 1-5-10 report", "",
             f"Incidents that began since {w['since']} until {w['until']}"
             + (f", cluster {w['cluster']}" if w["cluster"] else "")
             + f": {tree['incidents']['real']} real, {tree['incidents']['drills']} drills.", ""]
    real = {"count": tree["incidents"]["real"], "stages": tree["stages"], "milestones": tree["milestones"],
            "breaches": tree["breaches"], "all_three_met": tree["all_three_met"]}
    lines += _group_md("Real incidents", real, tree["budgets"])
    lines += _group_md("Drills", tree["drills"], tree["budgets"])
    lines += _budgets_md(tree.get("error_budgets") or [])
    items = tree["open_action_items"]
    lines += [f"## Open action items: {len(items)}", ""]
    for a in items:
        due = f", due {a['due_on']}" + (" (**overdue**)" if a["overdue"] else "") if a["due_on"] else ""
        owner = f"@{a['owner']}" if a["owner"] else "nobody yet"
        lines.append(f"- #{a['id']} {render.md_cell(a['text'])} ({a['incident']}, {a['priority']}, {owner}{due})")
    if not items:
        lines.append("None open.")
    return "\n".join(lines).rstrip("\n") + "\n"


def html(tree: dict[str, Any]) -> str:
    return render.environment("html").get_template("report.html.j2").render(report=tree).rstrip("\n") + "\n"


def check_format(fmt: str | None) -> str:
    fmt = (fmt or "md").strip().lower()
    if fmt not in MEDIA_TYPES:
        raise BadInput(f"format must be one of {', '.join(MEDIA_TYPES)}, not `{fmt}`.", field="format")
    return fmt


def build_and_render(session: Session, settings: Settings, *, now: datetime, since: str | None = "30d",
                     cluster: str | None = None, fmt: str | None = "md") -> tuple[str, str, dict[str, Any]]:
    """(content, media type, tree) — bad input is a ``BadInput`` naming the field, checked before any read."""
    fmt = check_format(fmt)
    start = search.parse_since(since or "30d", now)
    tree = report.build(session, settings, now=now, since=start, cluster=cluster or None)
    content = {"md": markdown, "json": lambda t: json.dumps(t, ensure_ascii=False, indent=2) + "\n", "html": html}[fmt](tree)
    return content, MEDIA_TYPES[fmt], tree
