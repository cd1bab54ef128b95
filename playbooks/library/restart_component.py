"""restart-component: restart a stuck or dead kube-scheduler or kube-controller-manager.

Both run with leader election: only the holder of their Lease (``kube-system/<name>``) works,
and a stuck holder (a hung process, a deadlock) keeps its pid and its port but renews nothing;
pods stay Pending while ``/readyz`` of every apiserver says ok. Restarting ends the stuck
process; the new one (or a standby instance elsewhere: that is the failover) takes the Lease
once it expires. The playbook restarts through the component controller the cluster is
configured with (``clusters.NAME.components.<name>``: shell templates such as
``ssh cp-1 systemctl restart {component}``; the sandbox's own processes in drills), and is
verified from the outside: the Lease is held again and renewed within its duration by a
holder other than the stuck one, and the component's ``/healthz`` answers (when configured).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import httpx

from bot.core.errors import ConfigError, StepFailed
from integrations.clients.components import CommandComponentController, ComponentController
from playbooks.engine.declaration import Plan, PlanContext, Playbook, Step, StepContext, Verdict
from playbooks.engine.params import Param
from playbooks.engine.waiting import poll_until

NAME = "restart-component"
COMPONENTS = ("kube-scheduler", "kube-controller-manager")
LEADER_WAIT_SECONDS = 45.0


def _settings(tools: Any, cluster: str, component: str) -> Any:
    clusters = getattr(tools.settings, "clusters", {}) or {}
    endpoints = clusters.get(cluster)
    return (endpoints.components.get(component) if endpoints is not None else None)


def open_controller(tools: Any, cluster: str, component: str) -> ComponentController:
    """The toolbox's ``component_controller`` for the cluster, else one built from settings."""
    try:
        return tools.get("component_controller", cluster)
    except LookupError:
        pass
    cfg = _settings(tools, cluster, component)
    if cfg is None or cfg.controller != "command":
        raise ConfigError(f"clusters.{cluster}.components.{component} is not configured with "
                          f"controller: command and its start/stop/is_running templates; the bot cannot "
                          f"restart {component} on {cluster}.")
    missing = [k for k in ("start_command", "stop_command", "is_running_command") if not getattr(cfg, k)]
    if missing:
        raise ConfigError(f"clusters.{cluster}.components.{component}: {', '.join(missing)} is not set.")
    return CommandComponentController(start=cfg.start_command, stop=cfg.stop_command,
                                      is_running=cfg.is_running_command, timeout=cfg.command_timeout_seconds)


def lease_ref(tools: Any, cluster: str, component: str) -> tuple[str, str]:
    cfg = _settings(tools, cluster, component)
    ref = (cfg.lease if cfg is not None and cfg.lease else f"kube-system/{component}")
    namespace, _, name = ref.partition("/")
    return namespace, name


def read_lease(tools: Any, cluster: str, component: str) -> dict[str, Any]:
    """Holder, seconds since renewal and duration of the component's leader Lease."""
    namespace, name = lease_ref(tools, cluster, component)
    lease = tools.kubernetes(cluster).get_object("coordination.k8s.io/v1", "Lease", name, namespace)
    spec = (lease or {}).get("spec") or {}
    renewed = spec.get("renewTime")
    age = None
    if renewed:
        age = (datetime.now(timezone.utc) - datetime.fromisoformat(str(renewed).replace("Z", "+00:00"))).total_seconds()
    duration = spec.get("leaseDurationSeconds")
    return {"lease": f"{namespace}/{name}", "exists": lease is not None, "holder": spec.get("holderIdentity"),
            "renewed_seconds_ago": None if age is None else round(age, 1), "duration_seconds": duration,
            "fresh": age is not None and duration is not None and age <= float(duration)}


def _health(tools: Any, cluster: str, component: str) -> tuple[bool, str]:
    cfg = _settings(tools, cluster, component)
    urls = list(cfg.health_urls) if cfg is not None else []
    if not urls:
        return True, "no health URL configured"
    answers = []
    for url in urls:
        status: int | str
        try:
            with httpx.Client(verify=False, timeout=2.0, trust_env=False) as client:  # noqa: S501 - self-signed serving certs
                status = client.get(url).status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        answers.append(f"{url} {status}")
        if status == 200:
            return True, "; ".join(answers)
    return False, "; ".join(answers)


def plan(ctx: PlanContext) -> Plan:
    component = ctx.params["component"]
    controller = open_controller(ctx.tools, ctx.cluster, component)
    lease = read_lease(ctx.tools, ctx.cluster, component)
    healthy, health = _health(ctx.tools, ctx.cluster, component)
    running = controller.is_running(component)
    how = (controller.render("stop", component) + " && " + controller.render("start", component)
           if isinstance(controller, CommandComponentController) else "the cluster's component controller")
    lines = [f"restart {component} on {ctx.cluster} ({how})",
             f"now: {'running' if running else 'not running'}; leader Lease {lease['lease']} held by "
             f"{lease['holder'] or 'nobody'}, renewed {lease['renewed_seconds_ago']} s ago "
             f"(duration {lease['duration_seconds']} s){'' if lease['fresh'] else ': stale'}; health: {health}",
             "then: wait until the Lease is held and renewed again, by a new holder"]
    return Plan(changes=[{"action": "restart", "component": component}], lines=lines,
                impact={"components": 1},
                # facts are hashed into the approval: only what does not move by itself (no ages, no health)
                facts={"component": component, "holder_before": lease["holder"], "fresh_before": lease["fresh"]},
                rollback=["nothing to undo: a restart leaves no change behind (the component is started again)"])


def _restart(ctx: StepContext) -> dict[str, Any]:
    component = ctx.plan["facts"]["component"]
    open_controller(ctx.tools, ctx.cluster, component).restart(component)
    return {"restarted_at": datetime.now(timezone.utc).isoformat()}


def _new_leader(ctx: StepContext) -> tuple[bool, dict[str, Any]]:
    facts = ctx.plan["facts"]
    lease = read_lease(ctx.tools, ctx.cluster, facts["component"])
    old = facts["holder_before"]
    return bool(lease["fresh"] and lease["holder"] and (lease["holder"] != old or facts["fresh_before"])), lease


def _wait_leader(ctx: StepContext) -> dict[str, Any]:
    # waiting for the old Lease to expire and the new process to take it
    ok, (_, lease) = poll_until(lambda: _new_leader(ctx), lambda answer: answer[0], seconds=LEADER_WAIT_SECONDS,
                                every=0.5, step_deadline=ctx.deadline)
    if not ok:
        raise StepFailed(f"{lease['lease']} is not renewed by a new holder (holder {lease['holder']}, "
                         f"renewed {lease['renewed_seconds_ago']} s ago)")
    return {"lease": lease}


def verify(ctx: StepContext) -> Verdict:
    component = ctx.plan["facts"]["component"]
    ok, lease = _new_leader(ctx)
    healthy, health = _health(ctx.tools, ctx.cluster, component)
    data = {"lease": lease, "health": health}
    if not ok:
        return Verdict(False, f"{component}: Lease {lease['lease']} held by {lease['holder']}, renewed "
                              f"{lease['renewed_seconds_ago']} s ago: no working leader", data)
    if not healthy:
        return Verdict(False, f"{component} leads again but its health check fails: {health}", data)
    return Verdict(True, f"{component} leads again: {lease['holder']} renewed {lease['lease']} "
                         f"{lease['renewed_seconds_ago']} s ago; health: {health}", data)


PLAYBOOK = Playbook(
    name=NAME,
    summary="Restart a stuck kube-scheduler or kube-controller-manager; verified by a freshly renewed leader Lease.",
    risk="low",
    params=(Param("component", "the component to restart", choices=COMPONENTS, default="kube-scheduler",
                  from_diagnosis=("component",)),),
    plan=plan,
    steps=(
        Step("restart", do=_restart, timeout=60, describe="stop the component and start it again"),
        Step("wait-leader", do=_wait_leader, timeout=LEADER_WAIT_SECONDS + 5, repeatable=True,
             describe="wait until its leader Lease is renewed by a new holder"),
    ),
    verify=verify,
    blast_radius={"components": 1},
    details=__doc__ or "",
)
