"""Chat verbs that edit incidents and show the rotas: severity, title, merge, link, split, cluster, oncall."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.chat.dispatcher import ChatContext, Dispatcher
from bot.chat.grammar import Command
from bot.chat.messages import Bullets, Heading, Reply
from bot.core.config.people import Team
from bot.core.errors import BadInput, PermissionDenied
from bot.domain.incidents import editing, fleet
from bot.core.store.refs import parse_ref, ref_of
from bot.domain.slo import rota


def severity(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    row, old = editing.set_severity(d.services.incidents, d.incident_ref(ctx, cmd), cmd.args["severity"],
                                    actor=ctx.user, source=ctx.source)
    return Reply.line(f"{ref_of(row.id)} is now {row.severity} (was {old}).", incident_id=row.id)


def title(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    row = editing.set_title(d.services.incidents, d.incident_ref(ctx, cmd), cmd.args["text"],
                            actor=ctx.user, source=ctx.source)
    return Reply.line(f"{ref_of(row.id)} is now titled: {row.title}", incident_id=row.id)


def merge(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    source = cmd.args.get("incident") or d.incident_ref(ctx, cmd)
    merged, survivor = editing.merge(d.services.incidents, source, cmd.args["into"], actor=ctx.user, source=ctx.source)
    return Reply.line(f"{ref_of(merged.id)} is merged into {ref_of(survivor.id)} and closed; carry on in "
                      f"{ref_of(survivor.id)}.", incident_id=survivor.id)


def link(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    ref = cmd.args.get("incident") or d.incident_ref(ctx, cmd)
    row, other = editing.link(d.services.incidents, ref, cmd.args["other"], actor=ctx.user, source=ctx.source)
    return Reply.line(f"{ref_of(row.id)} and {ref_of(other.id)} are linked as related.", incident_id=row.id)


def _when(team: Team, at: datetime) -> str:
    zone = None if team.timezone.strip().upper() == "UTC" else ZoneInfo(team.timezone)
    return (at.astimezone(zone) if zone else at).strftime("%a %Y-%m-%d %H:%M %Z")


def _team_line(name: str, team: Team, now: datetime) -> str:
    on, after = rota.on_duty(team, now), rota.next_on_duty(team, now)
    parts = ([f"clusters {' '.join(team.clusters)}"] if team.clusters else []) + \
        ([f"components {' '.join(team.components)}"] if team.components else [])
    scope = ", ".join(parts) or "everything else"
    return (f"{name} ({team.timezone}; {scope}): now @{on.user} until {_when(team, on.end)}"
            + (" (override)" if on.override else "")
            + f"; next @{after.user} from {_when(team, after.start)}" + (" (override)" if after.override else ""))


def oncall(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    settings, now = d.services.settings, d.services.clock.now()
    teams = rota.teams(settings.oncall)
    if not teams:
        return Reply.line("No rota is configured (oncall.rota or oncall.teams).", ephemeral=True)
    wanted = cmd.args.get("team")
    if wanted:
        if wanted not in teams:
            raise BadInput(f"there is no team `{wanted}`; teams: {', '.join(sorted(teams))}.", field="team",
                           usage="/incident oncall [team]")
        chosen = {wanted: teams[wanted]}
        head = f"On call: {wanted}"
    elif ctx.incident_id is not None:
        incident = d.services.incidents.get(ctx.incident_id)
        found = rota.team_for(settings.oncall, incident.cluster, incident.component)
        chosen = dict([found]) if found else teams
        head = f"On call for {ref_of(incident.id)} ({incident.cluster}" + (f" / {incident.component})" if incident.component else ")")
    else:
        chosen, head = teams, "On call"
    lines = tuple(_team_line(name, team, now) for name, team in chosen.items())
    return Reply(text=f"{head}: {' | '.join(lines)}", blocks=[Heading(head), Bullets(lines)], ephemeral=True)


def split(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    with d.services.incidents.transaction(d.incident_ref(ctx, cmd)) as (session, row):
        new = fleet.split(session, d.services.incidents, row, cmd.args["cluster"], actor=ctx.user, source=ctx.source)
        old_id, new_id = row.id, new.id
    return Reply.line(f"Cluster {cmd.args['cluster']} is split out of {ref_of(old_id)} into {ref_of(new_id)}.",
                      incident_id=new_id)


def cluster(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    """One cluster reached a stage; the last cluster to be mitigated mitigates the incident, so (like
    `/incident mitigated`) only the commander may say a cluster is mitigated once there is one."""
    stage = cmd.args["stage"].lower()
    ref = d.incident_ref(ctx, cmd)
    commander = d.services.incidents.view(ref).commander
    if stage == "mitigated" and commander is not None and commander != ctx.user:
        raise PermissionDenied(f"only the commander @{commander} can mark a cluster of {ref_of(parse_ref(ref))} "
                               "mitigated.")
    with d.services.incidents.transaction(ref) as (session, row):
        whole = fleet.reach(session, d.services.incidents, row, cmd.args["cluster"], stage, actor=ctx.user,
                            source=ctx.source, text=cmd.args.get("text"), again=False)
        incident_id = row.id
    return Reply.line(f"Cluster {cmd.args['cluster']} of {ref_of(incident_id)} is {stage}"
                      + (f"; every cluster is, so {ref_of(incident_id)} is {stage}." if whole else "."),
                      incident_id=incident_id)


FLEET_HANDLERS = {"split": split, "cluster": cluster}


def register(dispatcher: Dispatcher) -> None:
    for verb, handler in {"severity": severity, "title": title, "merge": merge, "link": link, "oncall": oncall,
                         **FLEET_HANDLERS}.items():
        dispatcher.register(verb, handler)
