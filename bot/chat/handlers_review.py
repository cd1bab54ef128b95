"""Chat verbs for after the incident: the post-mortem's written sections, action items, finding incidents.

``impact``, ``factor``, ``went-well`` and ``lesson`` append to the review
sections (``bot.domain.incidents.review``); ``action`` takes an owner, due date and
priority; ``list`` filters and searches (``--all --since 7d --cluster X
--state resolved <text>``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from bot.chat import cards
from bot.chat.dispatcher import ChatContext, Dispatcher, Handler
from bot.chat.grammar import Command
from bot.chat.messages import Bullets, Heading, Reply
from bot.core.errors import BadInput
from bot.domain.incidents import action_items, review, search
from bot.core.store.refs import ref_of
from bot.core.store import outbox
from bot.core.store.messages import Notice
from bot.core.store.models import TimelineEvent


def write_review(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    incident_id, section = review.write(d.services.incidents, d.incident_ref(ctx, cmd), cmd.verb, cmd.args["text"],
                                        actor=ctx.user, source=ctx.source)
    return Reply.line(review.reply_text(incident_id, section), incident_id=incident_id)


def action(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    text = cmd.args["text"]
    words = text.split()
    ref = d.incident_ref(ctx, cmd)
    if len(words) == 2 and words[0].lower() == "done":
        number = words[1].lstrip("#")
        if not number.isdigit():
            raise BadInput(f"`{words[1]}` is not an action item number.", field="action",
                           usage="/incident action done <N> [INC]")
        item = d.services.incidents.complete_action(ref, int(number), actor=ctx.user, source=ctx.source)
        return Reply.line(f"Action item #{item.id} is done.", incident_id=item.incident_id)
    spec = action_items.parse(text)
    item = action_items.add(d.services.incidents, ref, spec, actor=ctx.user, source=ctx.source)
    plain = spec.owner is None and spec.due_on is None and spec.priority == "p2"
    detail = "" if plain else f": {action_items.describe(item)}"
    return Reply.line(f"Action item #{item.id} added to {ref_of(item.incident_id)}{detail}.", incident_id=item.incident_id)


def list_(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    opts = cmd.options
    if not opts and "text" not in cmd.args:
        return cards.incident_list(d.services.incidents.list())
    now = d.services.clock.now()
    query = search.Query(
        include_finished="all" in opts,
        since=search.parse_since(opts["since"], now) if "since" in opts else None,
        cluster=opts.get("cluster"), state=opts.get("state", "").lower() or None, text=cmd.args.get("text"),
    )
    with d.services.db.session() as session:
        found = search.find(session, query)
    if not found:
        return Reply.line("No incident matches.")
    items = tuple(f"{ref_of(i.id)} [{i.state}] {i.severity} {i.cluster}: {i.title}"
                  + (" (drill)" if i.is_drill else "") for i in found)
    head = f"{len(found)} incident(s) match"
    return Reply(text=head, blocks=[Heading(head), Bullets(items)])


def prompt_for_review(resolve: Handler) -> Handler:
    """``resolve`` also asks, in the incident's chat, for the post-mortem sections nobody has written yet."""

    def handler(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
        reply = resolve(d, ctx, cmd)
        if reply.error or reply.incident_id is None:
            return reply
        incident_id = reply.incident_id
        with d.services.db.session() as session:
            kinds = {k for (k,) in session.execute(select(col(TimelineEvent.kind)).where(
                col(TimelineEvent.incident_id) == incident_id, col(TimelineEvent.kind).like("review.%")))}
            empty = [s for s in review.SECTIONS if s.kind not in kinds]
            if empty:
                asks = "; ".join(f"{s.title.lower()} (`/incident {s.verb} <text>`)" for s in empty)
                prompt = Notice(text=f"{ref_of(incident_id)} is resolved. For its post-mortem, nobody has "
                                     f"written yet: {asks}.")
                outbox.enqueue(session, prompt, incident_id=incident_id, now=d.services.clock.now(),
                               dedupe_key=f"review-prompt:{incident_id}:{d.services.clock.now().isoformat()}")
        return reply

    return handler


def register(dispatcher: Dispatcher) -> None:
    if "resolve" in dispatcher.handlers:
        dispatcher.register("resolve", prompt_for_review(dispatcher.handlers["resolve"]))
    for section in review.SECTIONS:
        dispatcher.register(section.verb, write_review)
    dispatcher.register("action", action)
    dispatcher.register("list", list_)
