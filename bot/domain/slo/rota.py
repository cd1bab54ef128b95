"""On-call rotas: who is on duty for an incident now, who comes next, whom escalation pages.

A rota is a team (``oncall.teams.NAME``, or the ``default`` team made of
``oncall.rota``): members taking turns every ``rotation_hours`` from
``rotation_start``, plus overrides (a swap, a holiday) that win while they
last.  Hand-overs are counted on the wall clock of the team's time zone, so a
weekly 09:00 Europe/Berlin hand-over stays at 09:00 across daylight saving.

An incident's team is the most specific match of its cluster and component:
a team naming the component beats one naming only clusters, which beats a
catch-all; the default team is the fallback.  Everything here is a pure
function of the settings and ``now``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from bot.core.config.people import OnCall, Team

DEFAULT_TEAM = "default"


@dataclass(frozen=True)
class Shift:
    """Someone on duty from ``start`` until ``end`` (UTC), by rotation or by override."""

    user: str
    start: datetime
    end: datetime
    override: bool = False


def teams(oncall: OnCall) -> dict[str, Team]:
    """Every rota by name; ``default`` is the top-level ``oncall.rota`` (when it has members)."""
    out: dict[str, Team] = {}
    if oncall.rota:
        out[DEFAULT_TEAM] = Team(members=list(oncall.rota), timezone=oncall.timezone,
                                 rotation_hours=oncall.rotation_hours, rotation_start=oncall.rotation_start,
                                 overrides=list(oncall.overrides))
    out.update(oncall.teams)
    return out


def team_for(oncall: OnCall, cluster: str | None = None, component: str | None = None) -> tuple[str, Team] | None:
    """The rota that answers for an incident of ``cluster``/``component`` (None: nobody is configured)."""
    best: tuple[int, str, Team] | None = None
    for name, team in oncall.teams.items():
        if team.clusters and not (cluster and any(fnmatch.fnmatchcase(cluster, p) for p in team.clusters)):
            continue
        if team.components and component not in team.components:
            continue
        score = (2 if team.components else 0) + (1 if team.clusters else 0)
        if best is None or score > best[0]:
            best = (score, name, team)
    if best is not None:
        return best[1], best[2]
    everyone = teams(oncall)
    return (DEFAULT_TEAM, everyone[DEFAULT_TEAM]) if DEFAULT_TEAM in everyone else None


def _zone(team: Team) -> ZoneInfo | timezone:
    return timezone.utc if team.timezone.strip().upper() == "UTC" else ZoneInfo(team.timezone)


def _wall(team: Team, at: datetime) -> datetime:
    """``at`` as naive wall-clock time in the team's zone (naive input already is)."""
    return at.replace(tzinfo=None) if at.tzinfo is None else at.astimezone(_zone(team)).replace(tzinfo=None)


def _instant(team: Team, wall: datetime) -> datetime:
    return wall.replace(tzinfo=_zone(team)).astimezone(timezone.utc)


def _rotation(team: Team, now: datetime) -> Shift:
    start = _wall(team, team.rotation_start)
    period = timedelta(hours=team.rotation_hours)
    turns = (_wall(team, now) - start) // period
    begin = start + turns * period
    return Shift(team.members[turns % len(team.members)], _instant(team, begin), _instant(team, begin + period))


def _override_span(team: Team, override_start: datetime, override_end: datetime) -> tuple[datetime, datetime]:
    return _instant(team, _wall(team, override_start)), _instant(team, _wall(team, override_end))


def on_duty(team: Team, now: datetime) -> Shift:
    """Who is on duty at ``now``: the latest-listed override covering it, else the rotation."""
    spans = [(o.user, *_override_span(team, o.start, o.end)) for o in team.overrides]
    for user, start, end in reversed(spans):
        if start <= now < end:
            return Shift(user, start, end, override=True)
    shift = _rotation(team, now)
    upcoming = [start for _, start, _ in spans if now < start < shift.end]
    ended = [end for _, _, end in spans if shift.start < end <= now]  # an override gave the shift back
    return Shift(shift.user, max(ended, default=shift.start), min(upcoming, default=shift.end))


def next_on_duty(team: Team, now: datetime) -> Shift:
    """The next person to take over (a different person from the one on duty now)."""
    current = on_duty(team, now)
    shift = current
    for _ in range(4 * len(team.members) + len(team.overrides) + 1):
        shift = on_duty(team, shift.end)
        if shift.user != current.user:
            return shift
    return shift


def escalation_chain(team: Team, now: datetime) -> list[str]:
    """Whom to page in order: the one on duty, the members after them in rota order, then ``escalation``."""
    first = on_duty(team, now).user
    rotation = _rotation(team, now).user
    start = team.members.index(rotation) if rotation in team.members else 0
    ordered = [first] + [team.members[(start + step) % len(team.members)] for step in range(len(team.members))]
    return list(dict.fromkeys(ordered + list(team.escalation)))


def primary(oncall: OnCall, now: datetime, *, cluster: str | None = None, component: str | None = None) -> str | None:
    """The person on duty now (the would-be incident commander) for this cluster/component."""
    found = team_for(oncall, cluster, component)
    return on_duty(found[1], now).user if found else None


def escalation_target(oncall: OnCall, now: datetime, level: int, exclude: set[str] | None = None, *,
                      cluster: str | None = None, component: str | None = None) -> str | None:
    """The person ``level`` steps after the primary, skipping ``exclude``; None if nobody is left."""
    found = team_for(oncall, cluster, component)
    if found is None or level < 1:
        return None
    candidates = [c for c in escalation_chain(found[1], now)[1:] if c not in (exclude or set())]
    if not candidates:
        return None
    return candidates[min(level - 1, len(candidates) - 1)]
