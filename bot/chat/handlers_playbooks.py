"""Chat verbs of the playbook engine: plan, run, approve, reject, abort, freeze, unfreeze.

Also the extension entry point (``register(bot)``, listed in
``bot.compose.app.bot.EXTENSIONS``): it builds the engine, exposes its service as
``bot.services.extras.need(PLAYBOOKS)`` (what diagnosis calls to propose a run)
and adds the playbook worker to ``bot.workers``.
"""

from __future__ import annotations

from bot.chat.cards import approval_buttons
from bot.chat.dispatcher import ChatContext, Dispatcher
from bot.chat.grammar import Command
from bot.chat.messages import Code, Heading, Paragraph, Reply
from bot.domain.incidents import fleet
from bot.core.store.models import PlaybookRun
from playbooks.engine import PLAYBOOK_ENGINE, PLAYBOOKS, Engine, PlaybookService, Registry, Toolbox, build_engine
from playbooks.engine import metrics as playbook_metrics
from bot.chat.plugin import ChatHost

def install(bot: ChatHost, *, registry: Registry | None = None, tools: Toolbox | None = None) -> Engine:
    """Wire the engine into a built bot (tests pass their own registry or toolbox)."""
    engine = build_engine(bot.db, bot.settings, bot.clock, bot.services.incidents, registry=registry, tools=tools)
    bot.services.extras.put(PLAYBOOKS, engine.service)
    bot.services.extras.put(PLAYBOOK_ENGINE, engine)
    bot.workers[:] = [w for w in bot.workers if getattr(w, "name", None) != engine.worker.name]
    bot.workers.append(engine.worker)
    bot.on_stop.append(engine.tools.close)
    bot.metric_sources.append(lambda b: playbook_metrics.render(b.db))
    for verb, handler in HANDLERS.items():
        bot.dispatcher.register(verb, handler)
    return engine


def register(bot: ChatHost) -> None:
    install(bot)


def _service(d: Dispatcher) -> PlaybookService:
    return d.services.extras.need(PLAYBOOKS)


def _needs(run: PlaybookRun) -> str:
    if run.risk == "critical":
        return "needs the commander and a second approver (not the requester)"
    return "needs the commander's approval"


def plan(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    ref = d.incident_ref(ctx, cmd)
    run = _service(d).plan(ref, cmd.args["playbook"], cmd.params, actor=ctx.user, source=ctx.source,
                           cluster=fleet.require_cluster(d.services.incidents, ref, cmd.options.get("cluster")))
    request = " ".join(["/incident run", run.playbook, *(f"{k}={v}" for k, v in cmd.params.items())])
    return Reply(text=f"Plan for {run.playbook} (dry run RUN-{run.id}, plan {run.plan_hash[:12]})",
                 blocks=[Heading(f"Plan: {run.playbook} (dry run, nothing changed)"), Code(run.plan_text),
                         Paragraph(f"To request it: `{request}`")],
                 incident_id=run.incident_id)


def run(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    ref = d.incident_ref(ctx, cmd)
    run_row = _service(d).propose(ref, cmd.args["playbook"], cmd.params, requested_by=ctx.user, source=ctx.source,
                                  cluster=fleet.require_cluster(d.services.incidents, ref, cmd.options.get("cluster")))
    ref = f"RUN-{run_row.id}"
    if run_row.state == "approved":
        return Reply(text=f"{ref} {run_row.playbook} auto-approved (unattended drill); it starts now.",
                     blocks=[Heading(f"{ref} {run_row.playbook} — auto-approved (drill)"), Code(run_row.plan_text)],
                     incident_id=run_row.incident_id)
    return Reply(
        text=f"{ref} {run_row.playbook} ({run_row.risk} risk) awaits approval: {_needs(run_row)}.",
        blocks=[Heading(f"{ref} {run_row.playbook} ({run_row.risk} risk) awaits approval"), Code(run_row.plan_text),
                Paragraph(f"{_needs(run_row).capitalize()}; approvals bind to plan {run_row.plan_hash[:12]}."),
                approval_buttons(run_row)],
        incident_id=run_row.incident_id)


def approve(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    decision = _service(d).approve(cmd.args["run"], user=ctx.user, source=ctx.source, plan=cmd.options.get("plan"))
    return Reply.line(decision.text, incident_id=decision.run.incident_id)


def reject(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    decision = _service(d).reject(cmd.args["run"], user=ctx.user, reason=cmd.args.get("reason"), source=ctx.source)
    return Reply.line(decision.text, incident_id=decision.run.incident_id)


def abort(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    decision = _service(d).abort(cmd.args["run"], user=ctx.user, source=ctx.source)
    return Reply.line(decision.text, incident_id=decision.run.incident_id)


def freeze(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    return Reply.line(_service(d).freeze(user=ctx.user, reason=cmd.args.get("reason"), incident_id=ctx.incident_id,
                                         source=ctx.source))


def unfreeze(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    return Reply.line(_service(d).unfreeze(user=ctx.user, incident_id=ctx.incident_id, source=ctx.source))


HANDLERS = {"plan": plan, "run": run, "approve": approve, "reject": reject, "abort": abort, "freeze": freeze,
            "unfreeze": unfreeze}
