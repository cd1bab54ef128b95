"""Prometheus lines about playbook runs, rendered from the database (every replica says the same)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bot.store.models import PlaybookRun
from playbooks.engine import freeze


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(db: Any) -> list[str]:
    lines = ["# HELP incident_bot_playbook_runs Playbook runs by playbook and state.",
             "# TYPE incident_bot_playbook_runs gauge"]
    with db.session() as session:
        for playbook, state, count in session.execute(
                select(PlaybookRun.playbook, PlaybookRun.state, func.count())
                .group_by(PlaybookRun.playbook, PlaybookRun.state)):
            lines.append(f'incident_bot_playbook_runs{{playbook="{_esc(playbook)}",state="{_esc(state)}"}} {count}')
        frozen = freeze.current(session) is not None
    lines += ["# HELP incident_bot_playbooks_frozen 1 while the playbook freeze is on.",
              "# TYPE incident_bot_playbooks_frozen gauge", f"incident_bot_playbooks_frozen {int(frozen)}"]
    return lines
