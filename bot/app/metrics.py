"""Prometheus text exposition of the bot's own state.

Rendered from the database on each scrape (cheap aggregate queries), so every
replica reports the same truth and nothing is lost on restart.  Capabilities
add their own lines through ``bot.metric_sources``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bot.store.models import Incident, OutboxMessage, TimelineEvent

def labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def render_metrics(bot: Any) -> str:
    lines: list[str] = []
    with bot.db.session() as session:
        lines += ["# HELP incident_bot_incidents Incidents by state and severity.", "# TYPE incident_bot_incidents gauge"]
        for state, severity, count in session.execute(
            select(Incident.state, Incident.severity, func.count()).group_by(Incident.state, Incident.severity)
        ):
            lines.append(f"incident_bot_incidents{labels(state=state, severity=severity)} {count}")
        lines += ["# HELP incident_bot_slo_breaches_total Recorded 1-5-10 breaches (each stage of each incident at most once).",
                  "# TYPE incident_bot_slo_breaches_total counter"]
        breaches = session.execute(
            select(func.count()).select_from(TimelineEvent).where(TimelineEvent.kind == "slo.breach")
        ).scalar_one()
        lines.append(f"incident_bot_slo_breaches_total {breaches}")
        lines += ["# HELP incident_bot_outbox_messages Outbox messages by channel and status.",
                  "# TYPE incident_bot_outbox_messages gauge"]
        for channel, status, count in session.execute(
            select(OutboxMessage.channel, OutboxMessage.status, func.count()).group_by(OutboxMessage.channel, OutboxMessage.status)
        ):
            lines.append(f"incident_bot_outbox_messages{labels(channel=channel, status=status)} {count}")
    for source in bot.metric_sources:
        lines += source(bot)
    return "\n".join(lines) + "\n"
