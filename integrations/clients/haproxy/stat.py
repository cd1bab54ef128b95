"""``show stat``: HAProxy's CSV statistics, one row per frontend, backend and server.

``show servers state`` says what HAProxy *decided* (op/admin state);
``show stat`` adds what it *sees*: the backup flag, the last check result
(L7OK, L7STS ...), sessions now and in total — which is how a playbook
verifies that traffic actually moved to the bypass server.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from bot.core.errors import IntegrationError

_TYPES = {"0": "frontend", "1": "backend", "2": "server", "3": "listener"}


@dataclass(frozen=True)
class StatRow:
    proxy: str
    name: str
    kind: str  # frontend | backend | server | listener
    status: str  # UP, DOWN, MAINT, DRAIN, NOLB, "UP 1/2", OPEN (frontends) ...
    weight: int
    active: bool
    backup: bool
    check_status: str
    current_sessions: int
    total_sessions: int
    address: str
    raw: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_server(self) -> bool:
        return self.kind == "server"


def parse_show_stat(text: str, *, source: str = "HAProxy") -> list[StatRow]:
    """Parse the CSV of ``show stat``; the header line starts with ``# ``."""
    body = text.lstrip()
    if not body:
        return []
    if not body.startswith("#"):
        raise IntegrationError(f"{source} returned 'show stat' output without a CSV header: {body[:120]!r}.")
    reader = csv.DictReader(io.StringIO(body[1:].lstrip()))
    rows: list[StatRow] = []
    for rec in reader:
        if not rec.get("pxname"):
            continue
        rec = {k.strip(): (v or "") for k, v in rec.items() if k}
        rows.append(
            StatRow(
                proxy=rec["pxname"],
                name=rec.get("svname", ""),
                kind=_TYPES.get(rec.get("type", ""), rec.get("type", "")),
                status=rec.get("status", ""),
                weight=_int(rec.get("weight")),
                active=rec.get("act") == "1",
                backup=rec.get("bck") == "1",
                check_status=rec.get("check_status", ""),
                current_sessions=_int(rec.get("scur")),
                total_sessions=_int(rec.get("stot")),
                address=rec.get("addr", ""),
                raw=rec,
            )
        )
    return rows


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0
