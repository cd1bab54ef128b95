"""Handlers for the incident verbs of the grammar (declare … close, help, list)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from bot.chat import cards, grammar, handlers_review
from bot.chat.dispatcher import ChatContext, Dispatcher
from bot.chat.grammar import Command
from bot.chat.messages import Bullets, Heading, Reply
from bot.core.store.refs import ref_of
from bot.core.store.models import PlaybookRun


def pending_runs(dispatcher: Dispatcher, incident_id: int) -> list[PlaybookRun]:
    with dispatcher.services.db.reading() as session:  # `/incident status` never queues behind a writer
        return list(session.execute(
            select(PlaybookRun)
            .where(col(PlaybookRun.incident_id) == incident_id, col(PlaybookRun.state) == "awaiting_approval")
            .order_by(col(PlaybookRun.id))
        ).scalars())


def card_for(dispatcher: Dispatcher, ref: str | int) -> Reply:
    view = dispatcher.services.incidents.view(ref)
    return cards.card(view, pending_runs(dispatcher, view.incident.id))


def declare(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    row = d.services.incidents.declare(
        cmd.args.get("title", ""), actor=ctx.user, source=ctx.source,
        severity=cmd.options.get("severity"), cluster=cmd.options.get("cluster"),
    )
    return Reply.line(f"Declared {ref_of(row.id)}: {row.title} ({row.severity}, cluster {row.cluster}).",
                      incident_id=row.id)


def list_(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    return cards.incident_list(d.services.incidents.list())


def status(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    reply = card_for(d, d.incident_ref(ctx, cmd))
    reply.ephemeral = True
    return reply


def timeline_(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    incident, events = d.services.incidents.timeline(d.incident_ref(ctx, cmd))
    reply = cards.timeline_reply(incident, events)
    reply.ephemeral = True
    return reply


def help_(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    verb = cmd.args.get("verb")
    lines = grammar.help_lines(verb)
    title = f"/incident {verb}" if verb else "/incident — commands"
    return Reply(text=title, blocks=[Heading(title), Bullets(tuple(lines))], ephemeral=True)


def ack(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    row = d.services.incidents.ack(d.incident_ref(ctx, cmd), actor=ctx.user, source=ctx.source)
    return Reply.line(f"@{ctx.user} is now commander of {ref_of(row.id)}.", incident_id=row.id)


def assign(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    role, user = cmd.args["role"], cmd.args["user"]
    row = d.services.incidents.assign(d.incident_ref(ctx, cmd), role, user, actor=ctx.user, source=ctx.source)
    return Reply.line(f"@{user} is now {role.lower()} of {ref_of(row.id)}.", incident_id=row.id)


def note(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    row = d.services.incidents.note(d.incident_ref(ctx, cmd), cmd.args["text"], actor=ctx.user, source=ctx.source)
    return Reply.line(f"Noted on {ref_of(row.id)}.", incident_id=row.id)


def cause(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    row = d.services.incidents.cause(d.incident_ref(ctx, cmd), cmd.args["text"], actor=ctx.user, source=ctx.source)
    return Reply.line(f"{ref_of(row.id)} is diagnosed: {row.root_cause}", incident_id=row.id)


def _transition(method: str, done: str):
    def handler(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
        service = d.services.incidents
        kwargs = {}
        if "reason" in cmd.args:
            kwargs["reason"] = cmd.args["reason"]
        if "text" in cmd.args:
            kwargs["text"] = cmd.args["text"]
        row = getattr(service, method)(d.incident_ref(ctx, cmd), actor=ctx.user, source=ctx.source, **kwargs)
        return Reply.line(f"{ref_of(row.id)} is {done}.", incident_id=row.id)

    return handler


def register(dispatcher: Dispatcher) -> None:
    for verb, handler in {
        "declare": declare, "list": list_, "status": status, "timeline": timeline_, "help": help_,
        "ack": ack, "assign": assign, "note": note, "cause": cause,
        "mitigated": _transition("mitigated", "mitigated"), "resolve": _transition("resolve", "resolved"),
        "reopen": _transition("reopen", "reopened"), "cancel": _transition("cancel", "cancelled"),
        "close": _transition("close", "closed"),
    }.items():
        dispatcher.register(verb, handler)
    # the post-incident verbs (review sections, action items with owner/due, list filters) live there
    handlers_review.register(dispatcher)
