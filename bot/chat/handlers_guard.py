"""``/incident guard``: exceptions to the change freeze and lifting the mass-deletion breaker.

``allow`` asks for an exception (one user, this incident's cluster, a window, a rule); ``approve``
gives it; ``lift`` (the commander only) reopens deletes after the breaker tripped; ``status`` says
what the guard blocks now. Every step goes on the incident's timeline. The guard itself (the
webhook) reads these rows; see ``bot.domain.guard``.
"""

from __future__ import annotations

from typing import Any

from bot.chat.dispatcher import ChatContext, Dispatcher
from bot.chat.grammar import BY_NAME, Command
from bot.chat.messages import Reply
from bot.core.errors import BadInput, PermissionDenied
from bot.domain.guard import exceptions
from bot.domain.guard.breaker import EVERYONE
from bot.core.store import timeline
from bot.core.store.refs import ref_of
from bot.core.store.models import GuardException
from bot.core.store.states import FINISHED_STATES
from bot.domain.guard.decide import GUARD, Guard

ACTIONS = ("status", "allow", "approve", "lift")


def _guard(d: Dispatcher) -> Guard | None:
    return d.services.extras.find(GUARD)


def _may_approve(d: Dispatcher, commander: str | None, user: str) -> bool:
    return user == commander or user in d.services.settings.approvers.users


def guard(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    action = cmd.args["action"].lower()
    if action not in ACTIONS:
        raise BadInput(f"`/incident guard {action[:20]}`: expected one of {', '.join(ACTIONS)}.", field="action",
                       usage=BY_NAME["guard"].usage())
    words = (cmd.args.get("rest") or "").split()
    view = d.services.incidents.view(d.incident_ref(ctx, cmd))
    incident = view.incident
    handler = {"status": _status, "allow": _allow, "approve": _approve, "lift": _lift}[action]
    return handler(d, ctx, incident, view.commander, words)


def _status(d: Dispatcher, ctx: ChatContext, incident: Any, commander: str | None, words: list[str]) -> Reply:
    settings = d.services.settings.guard
    ref = ref_of(incident.id)
    if not settings.enabled:
        return Reply.line("The admission guard is off (guard.enabled: false); nothing is blocked.", incident_id=incident.id)
    with d.services.db.reading() as session:
        breakers = exceptions.open_breakers(session, incident.cluster)
    frozen = incident.severity in settings.freeze_severities and incident.state not in FINISHED_STATES
    lines = [f"Admission guard on {incident.cluster} ({settings.mode} mode): "
             + (f"risk-list writes frozen while {ref} is open" if frozen else f"{ref} does not freeze changes")]
    for b in breakers:
        who = "every client" if b.client == EVERYONE else b.client
        lines.append(f"breaker open: deletes of {b.resource} by {who} denied since "
                     f"{b.tripped_at:%H:%M:%S} UTC (threshold {b.threshold}); lift with `/incident guard lift`")
    return Reply.line("\n".join(lines), incident_id=incident.id)


def _allow(d: Dispatcher, ctx: ChatContext, incident: Any, commander: str | None, words: list[str]) -> Reply:
    usage = BY_NAME["guard"].usage()
    if len(words) < 2:
        raise BadInput("`/incident guard allow` needs a user and a window, e.g. "
                       "`/incident guard allow @alice 30m delete-nodes draining node-7`.", field="user", usage=usage)
    settings = d.services.settings.guard
    user = words[0].lstrip("@")
    minutes = exceptions.parse_minutes(words[1], settings)
    rule = words[2] if len(words) > 2 else "*"
    reason = " ".join(words[3:]) or None
    now = d.services.clock.now()
    with d.services.db.session() as session:
        row = exceptions.request_exception(session, settings, cluster=incident.cluster, incident_id=incident.id,
                                           user=user, minutes=minutes, rule=rule, reason=reason,
                                           requested_by=ctx.user, now=now)
        needs = "two approvers" if row.needed == 2 else "one approver (the commander)"
        text = (f"exception {row.id} requested by @{ctx.user}: @{user} may make {rule} writes on {incident.cluster} "
                f"for {minutes} min once approved ({needs}, not @{user}): `/incident guard approve {row.id}`")
        timeline.record(session, incident.id, "guard.exception.requested", text, at=now, actor=ctx.user,
                        source=ctx.source, data={"exception": row.id, "user": user, "rule": rule, "minutes": minutes,
                                                 "needed": row.needed, "reason": reason})
    return Reply.line(text, incident_id=incident.id)


def _approve(d: Dispatcher, ctx: ChatContext, incident: Any, commander: str | None, words: list[str]) -> Reply:
    if not words or not words[0].isdigit():
        raise BadInput("`/incident guard approve` needs the exception's number, e.g. `/incident guard approve 3`.",
                       field="exception", usage=BY_NAME["guard"].usage())
    if not _may_approve(d, commander, ctx.user):
        raise PermissionDenied(f"only the commander{' @' + commander if commander else ''} or a configured approver "
                               f"(approvers.users) can approve guard exceptions.")
    now = d.services.clock.now()
    with d.services.db.session() as session:
        row: GuardException = exceptions.approve_exception(session, int(words[0]), approver=ctx.user, now=now)
        if row.incident_id != incident.id:
            raise BadInput(f"exception {row.id} belongs to {ref_of(row.incident_id)}, not {ref_of(incident.id)}.",
                           field="exception")
        if row.approved_at is not None:
            text = (f"exception {row.id} approved by {', '.join('@' + a for a in row.approvers)}: @{row.user} may make "
                    f"{row.rule} writes on {row.cluster} until {row.until:%H:%M} UTC")
        else:
            text = f"exception {row.id}: @{ctx.user} approved; it needs {row.needed - len(row.approvers)} more approver"
        timeline.record(session, incident.id, "guard.exception.approved", text, at=now, actor=ctx.user,
                        source=ctx.source, data={"exception": row.id, "approvers": list(row.approvers),
                                                 "until": row.until.isoformat() if row.until else None})
    return Reply.line(text, incident_id=incident.id)


def _lift(d: Dispatcher, ctx: ChatContext, incident: Any, commander: str | None, words: list[str]) -> Reply:
    if commander is None:
        raise PermissionDenied("the commander lifts the breaker: take the incident first (`/incident ack`).")
    if ctx.user != commander:
        raise PermissionDenied(f"only the commander @{commander} can lift the mass-deletion breaker.")
    now = d.services.clock.now()
    with d.services.db.session() as session:
        rows = exceptions.lift_breakers(session, incident.cluster, by=ctx.user, now=now)
        if not rows:
            return Reply.line(f"no mass-deletion breaker is open on {incident.cluster}.", incident_id=incident.id)
        which = ", ".join(f"{r.resource} by {'every client' if r.client == EVERYONE else r.client}" for r in rows)
        text = f"mass-deletion breaker lifted by @{ctx.user} on {incident.cluster}: deletes of {which} allowed again"
        timeline.record(session, incident.id, "guard.breaker.lifted", text, at=now, actor=ctx.user, source=ctx.source,
                        data={"breakers": [r.id for r in rows]})
    live = _guard(d)
    if live is not None:  # this replica forgets at once; the others at their next refresh
        for r in rows:
            live.breaker.lifted(r.cluster, r.resource, r.client)
    return Reply.line(text, incident_id=incident.id)


def register(dispatcher: Dispatcher) -> None:
    dispatcher.register("guard", guard)
