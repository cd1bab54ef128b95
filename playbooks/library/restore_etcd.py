"""restore-etcd: rebuild the cluster's etcd from the newest trustworthy snapshot.

Critical risk (the commander plus a second approver): every write after the
snapshot is lost, and the apiservers must not talk to etcd meanwhile.

Plan: the newest catalogue snapshot whose file still has its sha256 (or
``snapshot=<id>``), the revisions that will be lost when the cluster still
answers, the members, the new cluster token and data dirs.  It refuses when
no snapshot passes, when the restore tool is missing, or when the cluster
looks healthy (``force=true`` overrides that one).  The current revision is
shown but deliberately not part of the hashed plan: it moves with every
write, and the approval is for *this snapshot onto these members*.

Execute: cut the apiservers off (``maint`` at the LB, or a site command),
stop every member (leader first), restore each into a new data dir, start
them, wait for health; the etcd check (all healthy, one leader, identical
hashkv, revision >= the snapshot's) is a step of its own *before* the
apiservers come back.  Verify repeats it and checks the apiservers are back.
"""

from __future__ import annotations

from typing import Any

from bot.core.errors import ConfigError, Conflict, IncidentBotError, StepFailed
from integrations.clients.etcd import EtcdMemberSpec
from playbooks import backups
from playbooks.engine.declaration import Plan, PlanContext, Playbook, Step, StepContext, Verdict
from playbooks.engine.params import Param
from playbooks.library import etcd_ops, lb_ops

NAME = "restore-etcd"


# -- plan ----------------------------------------------------------------------------------


def _snapshot(ctx: PlanContext) -> backups.Entry:
    catalogue = backups.catalogue_of(ctx.tools)
    wanted = ctx.params.get("snapshot")
    if wanted:
        entry = catalogue.get(int(wanted))
        if entry is None or entry.cluster != ctx.cluster:
            raise Conflict(f"refusing {NAME}: snapshot #{wanted} is not in the catalogue of cluster {ctx.cluster}.")
        problem = backups.verify_file(entry)
        if problem:
            raise Conflict(f"refusing {NAME}: snapshot #{wanted} fails its sha256 check: {problem}.")
        return entry
    entry, skipped = catalogue.newest_verified(ctx.cluster)
    if entry is None:
        why = f" ({'; '.join(skipped)})" if skipped else ""
        raise Conflict(f"refusing {NAME} on cluster {ctx.cluster}: no snapshot in the catalogue passes its "
                       f"sha256 check{why}. Take one with snapshot-etcd while a member still answers.")
    return entry


def _token(etcd: Any, cluster: str, entry: backups.Entry) -> str:
    """A new cluster token (restored members can never join stale ones) whose data dirs do not exist yet."""
    base = f"{cluster}-r{entry.id}-{entry.sha256[:8]}"
    for n in range(1, 1000):
        token = f"{base}-{n}"
        if not any(etcd_ops.new_data_dir(etcd, m, token).exists() for m in etcd_ops.current_specs(etcd)):
            return token
    raise Conflict(f"refusing {NAME}: too many earlier restores of snapshot #{entry.id} left data dirs behind.")


def _apiserver_plan(ctx: PlanContext, mode: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    restore = etcd_ops.etcd_settings(ctx.tools.settings, ctx.cluster).restore
    prefix = f"clusters.{ctx.cluster}.etcd.restore"
    if mode == "lb":
        cfg = lb_ops.lb_settings(ctx.tools.settings, ctx.cluster)
        lb = lb_ops.open_lb(ctx.tools, ctx.tools.settings, ctx.cluster)
        servers = lb_ops.servers_by_name(lb, cfg)
        recorded = {n: s["state"] for n, s in servers.items()}
        facts = {"mode": "lb", "backend": cfg.backend, "recorded": recorded,
                 "target": {n: "maint" for n in recorded}}
        changes = [{"action": "set_state", "server": n, "from": s, "to": "maint"} for n, s in recorded.items()]
        lines = [f"cut the apiservers off: {', '.join(recorded)} → maint at the LB (recorded: "
                 f"{lb_ops.describe_states(recorded)})"]
        return facts, changes, lines
    if mode == "command":
        if not (restore.apiservers_stop_command and restore.apiservers_start_command):
            raise ConfigError(f"{prefix}.apiservers is `command` but apiservers_stop_command or "
                              f"apiservers_start_command is not set.")
        facts = {"mode": "command", "stop": restore.apiservers_stop_command, "start": restore.apiservers_start_command}
        return facts, [{"action": "run", "command": restore.apiservers_stop_command}], \
            [f"stop the apiservers: `{restore.apiservers_stop_command}`"]
    return {"mode": "none"}, [], ["apiservers: not touched (etcd.restore.apiservers = none)"]


def plan(ctx: PlanContext) -> Plan:
    settings = ctx.tools.settings
    etcd = etcd_ops.etcd_settings(settings, ctx.cluster)
    tool = backups.snapshot_tool(settings, ctx.cluster)
    entry = _snapshot(ctx)
    old = etcd_ops.current_specs(etcd)
    summary = etcd_ops.summary_or_none(old)
    lines: list[str] = [f"restore from {entry.describe()}, sha256 {entry.sha256[:12]}… verified"]
    if summary is not None and summary.all_healthy and summary.one_leader and not ctx.params.get("force") \
            and etcd_ops.looks_consistent(old, etcdctl=etcd.etcdctl):
        raise Conflict(f"refusing {NAME} on cluster {ctx.cluster}: etcd looks healthy ({summary.sentence()}, "
                       f"identical hashkv, no alarm); "
                       f"a restore would throw away every write since revision {entry.revision}. "
                       f"Run it with force=true if that is really wanted.")
    revisions = [r.status.revision for r in (summary.members if summary else ()) if r.status is not None]
    if revisions:
        current = max(revisions)
        lost = max(current - entry.revision, 0)
        lines.append(f"the cluster still answers at revision {current}: {lost} revisions after the snapshot "
                     f"(revision {entry.revision}) will be LOST")
    else:
        lines.append(f"no member answers: the revisions after {entry.revision} cannot be counted and are lost")
    token = _token(etcd, ctx.cluster, entry)
    new = etcd_ops.restored_specs(etcd, token)
    api_facts, api_changes, api_lines = _apiserver_plan(ctx, etcd.restore.apiservers)
    lines += api_lines
    leader = ""
    if summary is not None and summary.one_leader:
        leader = next((r.endpoint for r in summary.members if r.status is not None and r.status.is_leader), "")
    lines.append("stop every member" + (f" (the leader {leader} first)" if leader else "")
                 + f": {', '.join(m.name for m in old)}")
    lines += [f"restore {m.name} ({m.peer_url}) into {m.data_dir}" for m in new]
    lines.append(f"new cluster token {token}; start the members; wait until all are healthy with one leader "
                 f"and identical hashkv")
    lines.append("bring the apiservers back" if api_facts["mode"] != "none" else "")
    changes = [*api_changes]
    changes += [{"action": "stop", "member": m.name} for m in old]
    changes += [{"action": "restore", "member": m.name, "data_dir": str(m.data_dir)} for m in new]
    changes += [{"action": "start", "member": m.name} for m in new]
    return Plan(
        changes=changes,
        lines=[line for line in lines if line],
        impact={"members": len(new)},
        facts={"snapshot": {"id": entry.id, "path": entry.path, "sha256": entry.sha256, "revision": entry.revision,
                            "total_keys": entry.total_keys},
               "token": token, "members": [m.name for m in new],
               "old_cluster_id": str(min(etcd_ops.cluster_ids(summary))) if etcd_ops.cluster_ids(summary) else None,
               "data_dirs": {m.name: str(m.data_dir) for m in new}, "tool": tool.offline_kind,
               "apiservers": api_facts},
        rollback=["only the apiservers' cut-off is undone; the old data dirs are kept untouched for forensics"],
    )


# -- steps ---------------------------------------------------------------------------------


def _etcd(ctx: StepContext) -> Any:
    return etcd_ops.etcd_settings(ctx.tools.settings, ctx.cluster)


def _old(ctx: StepContext) -> list[EtcdMemberSpec]:
    return etcd_ops.current_specs(_etcd(ctx))


def _new(ctx: StepContext) -> list[EtcdMemberSpec]:
    return etcd_ops.restored_specs(_etcd(ctx), ctx.facts["token"], ctx.facts["data_dirs"])


def _controller(ctx: StepContext) -> Any:
    return etcd_ops.open_controller(ctx.tools, ctx.tools.settings, ctx.cluster)


def _api(ctx: StepContext) -> dict[str, Any]:
    return ctx.facts["apiservers"]


def _lb(ctx: StepContext) -> tuple[Any, Any]:
    return (lb_ops.lb_settings(ctx.tools.settings, ctx.cluster),
            lb_ops.open_lb(ctx.tools, ctx.tools.settings, ctx.cluster))


def _timeout(ctx: StepContext) -> float:
    return _etcd(ctx).restore.command_timeout_seconds


def cut_do(ctx: StepContext) -> dict[str, Any]:
    api = _api(ctx)
    if api["mode"] == "lb":
        cfg, lb = _lb(ctx)
        changed = lb_ops.apply_states(lb, cfg, api["target"], cut_sessions=True)
        return {"changed": changed}
    if api["mode"] == "command":
        return {"output": etcd_ops.run_command(api["stop"], timeout=_timeout(ctx), what="stop the apiservers")}
    return {}


def cut_check(ctx: StepContext) -> bool:
    """In place: apiservers cut off -- or superseded: the restored members have started (after a crash)."""
    api = _api(ctx)
    if api["mode"] == "none" or etcd_ops.restored_started(_new(ctx)):
        return True
    if api["mode"] == "lb":
        cfg, lb = _lb(ctx)
        return lb_ops.states_match(lb, cfg, api["target"])
    return "cut-apiservers" in ctx.results  # a stop command cannot be observed; repeating it is harmless


def reconnect_do(ctx: StepContext) -> dict[str, Any]:
    api = _api(ctx)
    if api["mode"] == "lb":
        cfg, lb = _lb(ctx)
        return {"changed": lb_ops.apply_states(lb, cfg, api["recorded"])}
    if api["mode"] == "command":
        return {"output": etcd_ops.run_command(api["start"], timeout=_timeout(ctx), what="start the apiservers")}
    return {}


def reconnect_check(ctx: StepContext) -> bool:
    api = _api(ctx)
    if api["mode"] == "lb":
        cfg, lb = _lb(ctx)
        return lb_ops.states_match(lb, cfg, api["recorded"])
    return api["mode"] == "none" or "reconnect-apiservers" in ctx.results


def stop_do(ctx: StepContext) -> dict[str, Any]:
    return {"stopped": etcd_ops.stop_members(_controller(ctx), _old(ctx))}


def stop_check(ctx: StepContext) -> bool:
    return etcd_ops.members_stopped(_controller(ctx), _old(ctx), _new(ctx))


def restore_do(ctx: StepContext) -> dict[str, Any]:
    settings = ctx.tools.settings
    tool = backups.snapshot_tool(settings, ctx.cluster)
    snap = ctx.facts["snapshot"]
    entry = backups.catalogue_of(ctx.tools).get(snap["id"])
    problem = backups.verify_file(entry) if entry is not None else "it left the catalogue"
    if problem:
        raise StepFailed(f"snapshot #{snap['id']} no longer passes its sha256 check: {problem}")
    done = etcd_ops.restore_members(snap["path"], _new(ctx), ctx.facts["token"], tool=tool, run_id=ctx.run_id,
                                    timeout=settings.clusters[ctx.cluster].etcd.snapshots.timeout_seconds)
    return {"restored": done, "data_dirs": ctx.facts["data_dirs"]}


def restore_check(ctx: StepContext) -> bool:
    return all(etcd_ops.restore_is_done(m) for m in _new(ctx))


def start_do(ctx: StepContext) -> dict[str, Any]:
    return {"started": etcd_ops.start_members(_controller(ctx), _new(ctx))}


def start_check(ctx: StepContext) -> bool:
    controller = _controller(ctx)
    new = _new(ctx)
    return etcd_ops.restored_started(new) and all(controller.is_running(m) for m in new)


def _check(ctx: StepContext, new: list[EtcdMemberSpec]) -> tuple[bool, str, dict[str, Any]]:
    old_id = ctx.facts.get("old_cluster_id")
    return etcd_ops.check_restored(new, ctx.facts["snapshot"]["revision"], etcdctl=_etcd(ctx).etcdctl,
                                   old_cluster_id=int(old_id) if old_id else None, controller=_controller(ctx))


def healthy_do(ctx: StepContext) -> dict[str, Any]:
    new = _new(ctx)
    controller = _controller(ctx)

    def alive() -> None:
        gone = [m.name for m in new if not controller.is_running(m)]
        if gone:
            raise StepFailed(f"restored members {', '.join(gone)} exited after start (see their logs)")

    summary = etcd_ops.wait_healthy(new, timeout=_etcd(ctx).restore.health_timeout_seconds, alive=alive)
    ok, text, data = _check(ctx, new)
    if not ok:
        raise StepFailed(f"the restored etcd does not check out: {text}")
    return {"summary": summary.sentence(), **data}


def healthy_check(ctx: StepContext) -> bool:
    try:
        ok, _, _ = _check(ctx, _new(ctx))
    except IncidentBotError:
        return False
    return ok


def verify(ctx: StepContext) -> Verdict:
    ok, text, data = _check(ctx, _new(ctx))
    if not ok:
        return Verdict(False, f"etcd: {text}", data)
    if not reconnect_check(ctx):
        return Verdict(False, "etcd is restored but the apiservers are not back", data)
    api = _api(ctx)["mode"]
    back = {"lb": "apiservers back in their recorded LB states", "command": "apiservers started again",
            "none": "apiservers not touched"}[api]
    return Verdict(True, f"{text}; {back}", {**data, "token": ctx.facts["token"]})




PLAYBOOK = Playbook(
    name=NAME,
    summary="Restore the cluster's etcd from the newest verified snapshot (every later write is lost).",
    risk="critical",
    params=(
        Param("snapshot", "catalogue id of the snapshot to restore (default: the newest that passes its sha256 check)",
              type="int", default=None, minimum=1, example="7"),
        Param("force", "restore even though etcd looks healthy", type="bool", default=False, example="false"),
    ),
    plan=plan,
    steps=(
        Step("cut-apiservers", do=cut_do, check=cut_check, undo=reconnect_do, timeout=120,
             describe="cut the apiservers off etcd (maint at the LB, or the stop command)"),
        Step("stop-members", do=stop_do, check=stop_check, timeout=120,
             describe="stop every etcd member, the leader first"),
        Step("restore-data", do=restore_do, check=restore_check, timeout=900,
             describe="restore every member from the snapshot into a new data dir with the new token"),
        Step("start-members", do=start_do, check=start_check, timeout=120,
             describe="start the restored members"),
        Step("verify-etcd", do=healthy_do, check=healthy_check, timeout=180,
             describe="all members healthy, one leader, identical hashkv, revision >= the snapshot's"),
        Step("reconnect-apiservers", do=reconnect_do, check=reconnect_check, timeout=120,
             describe="bring the apiservers back"),
    ),
    verify=verify,
    blast_radius={"members": 7},
    details=__doc__ or "",
)
