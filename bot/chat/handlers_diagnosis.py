"""`/incident diagnose [INC] [--sop NAME]`: run (or re-run) diagnosis and show what it found."""

from __future__ import annotations

from bot.chat.dispatcher import ChatContext, Dispatcher
from bot.chat.grammar import Command
from bot.chat.messages import Block, Bullets, Heading, Paragraph, Reply
from bot.core.errors import IllegalTransition, NotAvailableYet
from bot.domain.incidents import fleet
from bot.core.store.refs import ref_of
from bot.domain.diagnosis.service import DIAGNOSER


def diagnose(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    diagnoser = d.services.extras.find(DIAGNOSER)
    if diagnoser is None:
        raise NotAvailableYet("`/incident diagnose` is not available yet in this build.")
    ref = d.incident_ref(ctx, cmd)
    result = diagnoser.diagnose(ref, actor=ctx.user, source=ctx.source, sop=cmd.options.get("sop"),
                                cluster=fleet.require_cluster(d.services.incidents, ref, cmd.options.get("cluster")))
    if result is None:
        raise IllegalTransition(f"a diagnosis of {ref} is already running.")
    o = result.outcome
    checks = tuple(("✓ " if c.known else "? ") + c.sentence() for c in o.checks)
    verdict = (f"Escalated to people: {o.cause}" if o.escalate else
               f"Root cause: {o.cause}\nPlaybook: {o.playbook}"
               + (" " + " ".join(f"{k}={v}" for k, v in o.params.items()) if o.params else "")
               + (f" — {result.proposal}" if result.proposal else ""))
    blocks: list[Block] = [
        Heading(f"{ref_of(result.incident_id)} diagnosis #{result.number}: {result.procedure.title}"),
        Bullets(checks), Paragraph("Path: " + " · ".join(s.sentence() for s in o.path) if o.path else "Path: -"),
        Paragraph(verdict)]
    return Reply(text=result.sentence(), blocks=blocks, incident_id=result.incident_id)


def register(dispatcher: Dispatcher) -> None:
    dispatcher.register("diagnose", diagnose)
