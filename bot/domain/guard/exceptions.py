"""Exceptions to the change freeze, and lifting the breaker: the decisions people make in chat.

An exception is for one user on one cluster for a time window, for one risk-list rule (or ``*``,
every rule). It takes effect once enough people approved it: one for an ordinary rule, two for a
critical one (deleting Namespaces or CRDs, changing admission webhooks). Nobody approves an
exception for themselves. Rows are the record; the chat verb puts each step on the timeline.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.core.config.guard import GuardSettings
from bot.core.errors import BadInput, Conflict, NotFound, PermissionDenied
from bot.core.store.models import GuardBreaker, GuardException

DURATION_RE = re.compile(r"^(\d{1,4})(m|min|h)?$", re.IGNORECASE)


def parse_minutes(text: str, settings: GuardSettings) -> int:
    match = DURATION_RE.match(text.strip())
    if not match:
        raise BadInput(f"the window `{text[:20]}` is not a duration; expected minutes or hours, e.g. 30m or 2h.",
                       field="window")
    minutes = int(match.group(1)) * (60 if (match.group(2) or "m").lower() == "h" else 1)
    if not 1 <= minutes <= settings.max_exception_minutes:
        raise BadInput(f"the window must be between 1 minute and {settings.max_exception_minutes} minutes "
                       f"(guard.max_exception_minutes), not {minutes}.", field="window")
    return minutes


def approvals_needed(settings: GuardSettings, rule: str) -> int:
    """Two for a critical rule (and for ``*``, when any rule is critical), else one."""
    names = {r.name: r for r in settings.rules}
    if rule == "*":
        return 2 if any(r.critical for r in settings.rules) else 1
    if rule not in names:
        raise BadInput(f"there is no risk-list rule `{rule[:40]}`; expected one of {', '.join(names)} or *.",
                       field="rule")
    return 2 if names[rule].critical else 1


def request_exception(session: Session, settings: GuardSettings, *, cluster: str, incident_id: int, user: str,
                      minutes: int, rule: str, reason: str | None, requested_by: str, now: datetime) -> GuardException:
    row = GuardException(cluster=cluster, user=user, rule=rule, minutes=minutes, reason=reason,
                         incident_id=incident_id, requested_by=requested_by, requested_at=now,
                         needed=approvals_needed(settings, rule), approvers=[])
    session.add(row)
    session.flush()
    return row


def approve_exception(session: Session, exception_id: int, *, approver: str, now: datetime) -> GuardException:
    """Add ``approver``; the exception starts when the last needed approval arrives."""
    row = session.get(GuardException, exception_id)
    if row is None:
        raise NotFound(f"there is no guard exception {exception_id}.")
    if row.approved_at is not None:
        raise Conflict(f"exception {exception_id} is already approved (until {row.until:%H:%M} UTC).")
    if approver == row.user:
        raise PermissionDenied(f"@{approver} cannot approve an exception for themselves; ask someone else.")
    if approver in row.approvers:
        raise Conflict(f"@{approver} already approved exception {exception_id}; it needs another person.")
    row.approvers = [*row.approvers, approver]
    if len(row.approvers) >= row.needed:
        row.approved_at, row.until = now, now + timedelta(minutes=row.minutes)
    session.add(row)
    return row


def open_breakers(session: Session, cluster: str) -> list[GuardBreaker]:
    return list(session.execute(select(GuardBreaker).where(col(GuardBreaker.cluster) == cluster,
                                                           col(GuardBreaker.lifted_at).is_(None))
                                .order_by(col(GuardBreaker.id))).scalars())


def lift_breakers(session: Session, cluster: str, *, by: str, now: datetime) -> list[GuardBreaker]:
    rows = open_breakers(session, cluster)
    for row in rows:
        row.lifted_at, row.lifted_by = now, by
        session.add(row)
    return rows
