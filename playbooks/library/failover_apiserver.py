"""failover-apiserver: send the cluster's clients to the bypass apiservers at the load balancer.

Plan: every bypass server answers ``/readyz`` directly (else the playbook
refuses: failing over onto a bypass that is not ready makes things worse),
and the current state of every main and bypass server is recorded in the
plan, so rollback and failback restore exactly that.  Execute: bypass
servers ``ready``, main servers ``drain`` (open watches keep flowing, new
connections go to the bypass) or ``maint`` (everything moves now, open
sessions are cut), each change written to HAProxy's server-state-file so a
reload keeps it.  Verify: requests through the LB's own address answer
``/readyz`` ok and were taken by the bypass servers (LB session counters).
"""

from __future__ import annotations

from typing import Any, Callable

from bot.core.errors import Conflict, StepFailed
from playbooks.engine.declaration import Plan, PlanContext, Playbook, Step, StepContext, Verdict
from playbooks.engine.params import Param
from playbooks.library import lb_ops

NAME = "failover-apiserver"


def _cfg(ctx: PlanContext | StepContext) -> Any:
    return lb_ops.lb_settings(ctx.tools.settings, ctx.cluster)


def _lb(ctx: PlanContext | StepContext) -> Any:
    return lb_ops.open_lb(ctx.tools, ctx.tools.settings, ctx.cluster)


def plan(ctx: PlanContext) -> Plan:
    cfg, lb = _cfg(ctx), _lb(ctx)
    mode = ctx.params["mode"]
    servers = lb_ops.servers_by_name(lb, cfg)
    ready = lb_ops.bypass_readiness(servers, cfg)
    bad = {n: r["detail"] for n, r in ready.items() if not r["ok"]}
    if bad:
        raise Conflict(f"refusing {NAME} on cluster {ctx.cluster}: bypass "
                       + "; ".join(f"{n} is not ready ({d})" for n, d in bad.items()) + ".")
    if not cfg.frontend_url:
        raise Conflict(f"refusing {NAME} on cluster {ctx.cluster}: clusters.{ctx.cluster}.loadbalancer.frontend_url "
                       f"is not set, so the failover could not be verified.")
    recorded = {n: s["state"] for n, s in servers.items()}
    if all(recorded[n] in ("drain", "maint") for n in cfg.main):
        # recording these as "the states before" would make a later failback restore the failover itself
        raise Conflict(f"refusing {NAME} on cluster {ctx.cluster}: the main servers are already off "
                       f"({lb_ops.describe_states(recorded)}); `/incident run failback-apiserver` undoes a failover.")
    target = {**{n: "ready" for n in cfg.bypass}, **{n: mode for n in cfg.main}}
    changes = [{"action": "set_state", "backend": cfg.backend, "server": n, "role": servers[n]["role"],
                "from": recorded[n], "to": target[n]} for n in [*cfg.bypass, *cfg.main]]
    lines = [f"bypass {n} ({servers[n]['address']}): {recorded[n]} → ready — /readyz {ready[n]['detail']}"
             for n in cfg.bypass]
    lines += [f"main {n} ({servers[n]['address']}): {recorded[n]} → {mode}"
              + (" (open sessions are cut)" if mode == "maint" else " (open watches keep flowing)")
              for n in cfg.main]
    lines.append(f"persist the states in {cfg.state_file} so an HAProxy reload keeps them" if cfg.state_file
                 else "WARNING: no server-state-file configured: an HAProxy reload would undo this")
    lines.append(f"verify: {cfg.verify_requests} requests to {cfg.frontend_url}{cfg.ready_path} reach the bypass")
    return Plan(changes=changes, lines=lines,
                impact={"servers": len(changes)},
                facts={"backend": cfg.backend, "recorded": recorded, "target": target, "mode": mode,
                       "main": list(cfg.main), "bypass": list(cfg.bypass), "frontend_url": cfg.frontend_url,
                       "state_file": cfg.state_file},
                rollback=["restore the recorded states: " + lb_ops.describe_states(recorded)])


# -- steps -------------------------------------------------------------------------------


def group_states(ctx: StepContext, group: str, which: str) -> dict[str, str]:
    """``which`` = target or recorded, restricted to the ``group`` (main or bypass) servers."""
    return {n: ctx.facts[which][n] for n in ctx.facts[group]}


def set_group(group: str, which: str, *, cut_when_maint: bool = False, probe: bool = False,
              ) -> tuple[Callable[[StepContext], dict[str, Any]], Callable[[StepContext], bool]]:
    def do(ctx: StepContext) -> dict[str, Any]:
        cfg, lb = _cfg(ctx), _lb(ctx)
        wanted = group_states(ctx, group, which)
        if probe:  # the bypass may have gone bad since the plan: do not move traffic onto it
            servers = lb_ops.servers_by_name(lb, cfg)
            bad = {n: r["detail"] for n, r in lb_ops.bypass_readiness(servers, cfg).items() if not r["ok"]}
            if bad:
                raise StepFailed("bypass not ready any more: " + "; ".join(f"{n} ({d})" for n, d in bad.items()))
        changed = lb_ops.apply_states(lb, cfg, wanted, cut_sessions=cut_when_maint)
        return {"changed": changed, "states": lb_ops.current_states(lb, cfg)}

    def check(ctx: StepContext) -> bool:
        return lb_ops.states_match(_lb(ctx), _cfg(ctx), group_states(ctx, group, which))

    return do, check


def undo_group(group: str, which: str) -> Callable[[StepContext], dict[str, Any]]:
    def undo(ctx: StepContext) -> dict[str, Any]:
        cfg, lb = _cfg(ctx), _lb(ctx)
        return {"changed": lb_ops.apply_states(lb, cfg, group_states(ctx, group, which))}

    return undo


def persist_do(ctx: StepContext) -> dict[str, Any]:
    path = lb_ops.persist(_lb(ctx), _cfg(ctx))
    return {"state_file": str(path) if path else None}


def persist_check(ctx: StepContext) -> bool:
    return lb_ops.persisted(_lb(ctx), _cfg(ctx))


def verify(ctx: StepContext) -> Verdict:
    cfg, lb = _cfg(ctx), _lb(ctx)
    wanted = ctx.facts["target"]
    now = lb_ops.current_states(lb, cfg)
    if any(now.get(n) != s for n, s in wanted.items()):
        return Verdict(False, "the LB states are not the planned ones: " + lb_ops.describe_states(now), {"states": now})
    draining = any(wanted.get(n) == "drain" for n in cfg.main)
    traffic = lb_ops.traffic_check(lb, cfg, main_draining=draining)
    data = {"states": now, **traffic}
    if not traffic["ok"]:
        return Verdict(False, f"requests through {cfg.frontend_url} did not all reach the bypass: {traffic}", data)
    took = ""
    if "bypass_sessions" in traffic:
        took = f", bypass took {traffic['bypass_sessions']} new sessions, main {traffic['main_sessions']}"
        if draining and traffic["main_sessions"]:
            took += " (on connections opened before the drain, which drain keeps)"
    return Verdict(True, f"{cfg.frontend_url}{cfg.ready_path} answers ok through the LB{took}; "
                         f"states: {lb_ops.describe_states(now)}", data)


_bypass_do, _bypass_check = set_group("bypass", "target", probe=True)
_main_do, _main_check = set_group("main", "target", cut_when_maint=True)

PLAYBOOK = Playbook(
    name=NAME,
    summary="Fail the cluster's clients over to the bypass apiservers at the load balancer.",
    risk="high",
    params=(
        Param("mode", "drain keeps open watches on the main apiservers, maint cuts them at once",
              default="drain", choices=("drain", "maint"), example="drain", from_diagnosis=("mode",)),
    ),
    plan=plan,
    steps=(
        Step("ready-bypass", do=_bypass_do, check=_bypass_check, undo=undo_group("bypass", "recorded"), timeout=30,
             describe="put every bypass apiserver in state ready (after probing /readyz again)"),
        Step("move-main-off", do=_main_do, check=_main_check, undo=undo_group("main", "recorded"), timeout=30,
             describe="put the main apiservers in drain or maint"),
        Step("persist-state", do=persist_do, check=persist_check, timeout=30,
             describe="write HAProxy's server-state-file so a reload keeps the failover"),
    ),
    verify=verify,
    blast_radius={"servers": 16},
    details=__doc__ or "",
)
