"""Prometheus series about playbook runs, read from the database (every replica says the same)."""

from __future__ import annotations

from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlmodel import col

from bot.core.store.models import PlaybookRun
from playbooks.engine import freeze


def render(db: Any) -> list[Metric]:
    runs = GaugeMetricFamily("incident_bot_playbook_runs", "Playbook runs by playbook and state.",
                             labels=["playbook", "state"])
    with db.session() as session:
        for playbook, state, count in session.execute(
                select(col(PlaybookRun.playbook), col(PlaybookRun.state), func.count())
                .group_by(col(PlaybookRun.playbook), col(PlaybookRun.state))):
            runs.add_metric([playbook, state], count)
        frozen = freeze.current(session) is not None
    return [runs, GaugeMetricFamily("incident_bot_playbooks_frozen", "1 while the playbook freeze is on.",
                                    value=int(frozen))]
