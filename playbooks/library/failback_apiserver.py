"""failback-apiserver: put the load balancer back to the states recorded before a failover.

The states come from the plan of a succeeded ``failover-apiserver`` run
(the latest on the cluster, or ``run=RUN-n``), not from a guess: a bypass
that was in ``maint`` before the failover goes back to ``maint``.  The main
servers must answer ``/readyz`` directly first, else the playbook refuses:
failing back onto a broken main apiserver is the outage again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col

from bot.core.errors import Conflict, NotFound
from bot.core.store.models import PlaybookRun
from playbooks.backups import database_of
from playbooks.engine.declaration import Plan, PlanContext, Playbook, Step, StepContext, Verdict
from playbooks.engine.params import Param
from playbooks.library import lb_ops
from playbooks.library.failover_apiserver import NAME as FAILOVER
from playbooks.library.failover_apiserver import persist_check, persist_do, set_group, undo_group

NAME = "failback-apiserver"


def _run_id(value: str) -> str:
    text = value.strip().upper().removeprefix("RUN-")
    if not text.isdigit():
        raise ValueError(f"expected a run like RUN-12, not `{value}`")
    return f"RUN-{int(text)}"


def failover_run(tools: Any, cluster: str, ref: str | None) -> PlaybookRun:
    """The failover run to undo: ``ref``, else the latest succeeded failover-apiserver on ``cluster``."""
    with database_of(tools).session() as session:
        if ref:
            run = session.get(PlaybookRun, int(ref.removeprefix("RUN-")))
            if run is None or run.playbook != FAILOVER:
                raise NotFound(f"{ref} is not a {FAILOVER} run.")
            if run.state != "succeeded":
                raise Conflict(f"refusing {NAME}: {ref} is {run.state}, not succeeded; there is nothing to fail back.")
            return run
        run = session.execute(select(PlaybookRun).where(
            col(PlaybookRun.playbook) == FAILOVER, col(PlaybookRun.cluster) == cluster,
            col(PlaybookRun.state) == "succeeded")
            .order_by(col(PlaybookRun.id).desc())).scalars().first()
        if run is None:
            raise Conflict(f"refusing {NAME} on cluster {cluster}: no succeeded {FAILOVER} run recorded "
                           f"the states to go back to.")
        return run


def plan(ctx: PlanContext) -> Plan:
    cfg = lb_ops.lb_settings(ctx.tools.settings, ctx.cluster)
    lb = lb_ops.open_lb(ctx.tools, ctx.tools.settings, ctx.cluster)
    source = failover_run(ctx.tools, ctx.cluster, ctx.params.get("run"))
    target = {n: s for n, s in (source.plan.get("facts") or {}).get("recorded", {}).items()
              if n in cfg.main or n in cfg.bypass}
    if not target:
        raise Conflict(f"refusing {NAME}: RUN-{source.id} recorded no states of the configured servers.")
    servers = lb_ops.servers_by_name(lb, cfg)
    bad = {}
    for n in cfg.main:
        if target.get(n) == "ready":
            ok, detail = lb_ops.probe_ready(lb_ops.server_url(cfg, servers[n]["address"]), cfg)
            if not ok:
                bad[n] = detail
    if bad:
        raise Conflict(f"refusing {NAME} on cluster {ctx.cluster}: main "
                       + "; ".join(f"{n} is not ready ({d})" for n, d in bad.items()) + ".")
    current = {n: s["state"] for n, s in servers.items()}
    changes = [{"action": "set_state", "backend": cfg.backend, "server": n, "role": servers[n]["role"],
                "from": current[n], "to": target[n]} for n in [*cfg.main, *cfg.bypass] if n in target]
    lines = [f"{servers[c['server']]['role']} {c['server']}: {c['from']} → {c['to']}"
             + ("" if c["from"] != c["to"] else " (already)") for c in changes]
    lines.append(f"states recorded by RUN-{source.id} before its failover")
    return Plan(changes=changes, lines=lines, impact={"servers": len(changes)},
                facts={"backend": cfg.backend, "recorded": current, "target": target, "source_run": source.id,
                       "main": [n for n in cfg.main if n in target], "bypass": [n for n in cfg.bypass if n in target]},
                rollback=["back to the failover states: " + lb_ops.describe_states(current)])


def verify(ctx: StepContext) -> Verdict:
    cfg = lb_ops.lb_settings(ctx.tools.settings, ctx.cluster)
    lb = lb_ops.open_lb(ctx.tools, ctx.tools.settings, ctx.cluster)
    now = lb_ops.current_states(lb, cfg)
    wanted = ctx.facts["target"]
    if any(now.get(n) != s for n, s in wanted.items()):
        return Verdict(False, "the LB states are not the recorded ones: " + lb_ops.describe_states(now), {"states": now})
    ok, detail = lb_ops.probe_ready(cfg.frontend_url, cfg) if cfg.frontend_url else (True, "no frontend_url")
    if not ok:
        return Verdict(False, f"the LB does not answer ready: {detail}", {"states": now})
    return Verdict(True, f"back to the recorded states ({lb_ops.describe_states(now)}); {detail}", {"states": now})


_main_do, _main_check = set_group("main", "target")
_bypass_do, _bypass_check = set_group("bypass", "target")

PLAYBOOK = Playbook(
    name=NAME,
    summary="Undo a failover: the load balancer back to the states recorded before it.",
    risk="high",
    params=(Param("run", "the failover-apiserver run to undo (default: the latest succeeded one on the cluster)",
                  default=None, example="RUN-12", check=_run_id),),
    plan=plan,
    steps=(
        Step("restore-main", do=_main_do, check=_main_check, undo=undo_group("main", "recorded"), timeout=30,
             describe="the main apiservers back to their recorded states"),
        Step("restore-bypass", do=_bypass_do, check=_bypass_check, undo=undo_group("bypass", "recorded"), timeout=30,
             describe="the bypass apiservers back to their recorded states"),
        Step("persist-state", do=persist_do, check=persist_check, timeout=30,
             describe="write HAProxy's server-state-file so a reload keeps it"),
    ),
    verify=verify,
    blast_radius={"servers": 16},
    details=__doc__ or "",
)
