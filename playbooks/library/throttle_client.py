"""throttle-client: put one abusive API client in its own tiny APF priority level.

Research part A: a dedicated ``PriorityLevelConfiguration`` (Limited, a few
shares, nothing lent or borrowed, one small queue or Reject) and a
``FlowSchema`` that catches the client's requests before the schema that
catches them now (a numerically lower ``matchingPrecedence``, never <= 2).
Both objects are the bot's own (labelled ``app.kubernetes.io/managed-by:
incident-bot``); the suggested/mandatory objects are never edited.

Rollback and expiry delete the FlowSchema first (requests fall back to the
previous schema at once), then the priority level.  The throttle has a time
to live: the worker removes it when it ends, with a timeline event.
"""

from __future__ import annotations

from typing import Any

from bot.core.errors import BadInput, StepFailed
from integrations.clients.kubernetes.apf import is_dangling, matching_flow_schema, precedence
from playbooks.engine.declaration import Plan, PlanContext, Playbook, Step, StepContext, Verdict
from playbooks.engine.params import Param, format_duration
from playbooks.engine.waiting import poll_until
from playbooks.library import apf_manifests as manifests
from playbooks.library.apf_subjects import normalise, parse_subject
from bot.core.store.refs import ref_of

ADOPTION_WAIT_SECONDS = 10.0  # how long verify waits for the apiserver to apply the new FlowSchema
ADOPTION_POLL_SECONDS = 0.2
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "*")
_SAMPLE_RESOURCE = "pods"


def _resources(values: list[str]) -> list[str]:
    import re

    for v in values:
        if v != "*" and not re.match(r"^[a-z0-9.\-]+(/[a-z0-9.\-]+)?$", v):
            raise ValueError(f"`{v}` is not a resource (plural, lower case, optionally with /subresource)")
    if "*" in values and len(values) > 1:
        raise ValueError("`*` must be the only entry")
    return values


PARAMS = (
    Param("subject", "the client to throttle", example="serviceaccount:team-a/noisy-controller",
          from_diagnosis=("subject", "client", "user"), check=normalise),
    Param("verbs", "request verbs to throttle", type="list", default=["get", "list"], choices=VERBS),
    Param("resources", "resources to throttle (plural)", type="list", default=["*"], check=_resources),
    Param("api_groups", "API groups of those resources (`core` for the core group)", type="list", default=["*"],
          check=lambda groups: ["" if g in ("core", '""') else g for g in groups]),
    Param("shares", "nominalConcurrencyShares of the new level (0 = jail, v1 only)", type="int", default=1,
          minimum=0, maximum=100),
    Param("limit", "beyond the limit: queue (soft) or reject (immediate 429)", default="queue",
          choices=("queue", "reject")),
    Param("queue_length", "queued requests allowed when limit=queue", type="int", default=10, minimum=1,
          maximum=1000),
    Param("ttl", "how long the throttle stays before it is removed", type="duration", default=1800.0,
          minimum=60, maximum=86400),
    Param("precedence", "matchingPrecedence (default: just below the schema that catches the client now)",
          type="int", default=None, minimum=manifests.MIN_PRECEDENCE, maximum=9999),
)


def _sample_requests(subject: Any, verbs: list[str], resources: list[str], groups: list[str]) -> list[Any]:
    group = "" if ("*" in groups or "" in groups) else groups[0]
    out = []
    for verb in [v if v != "*" else "list" for v in verbs][:4]:
        for resource in [r if r != "*" else _SAMPLE_RESOURCE for r in resources][:4]:
            res, _, sub = resource.partition("/")
            out.append(subject.request(verb=verb, api_group=group, resource=res, subresource=sub,
                                       namespace="default"))
    return out


def _probe(subject: Any, verbs: list[str], resources: list[str], groups: list[str]) -> dict[str, Any]:
    """An impersonated request the FlowSchema must catch (for verify)."""
    user, user_groups = subject.probe_identity()
    verb = next((v for v in verbs if v in ("list", "get", "*")), "list")
    resource = next((r for r in resources if r != "*"), _SAMPLE_RESOURCE).partition("/")[0]
    group = "" if ("*" in groups or "" in groups) else groups[0]
    base = f"/api/v1" if not group else f"/apis/{group}/v1"
    path = f"{base}/namespaces/default/{resource}" + ("/incident-bot-probe" if verb == "get" else "")
    return {"user": user, "groups": list(user_groups), "path": path}


def plan(ctx: PlanContext) -> Plan:
    p = ctx.params
    subject = parse_subject(p["subject"])
    kube = ctx.tools.kubernetes(ctx.cluster)
    kubernetes_version = kube.server_minor_version()
    api_version = kube.flowcontrol_api_version
    if api_version.endswith("v1beta3") and p["shares"] < 1:
        raise BadInput("parameter `shares`: must be at least 1 on this cluster (flowcontrol v1beta3 reads 0 as "
                       "the default, 30).", field="shares")
    name = manifests.object_name(subject)
    schemas = [fs for fs in kube.list_flow_schemas() if fs["metadata"]["name"] != name]
    levels = [pl["metadata"]["name"] for pl in kube.list_priority_levels()]
    if kube.get_flow_schema(name) is not None or name in levels:
        raise BadInput(f"{subject} is throttled already ({name} exists); undo that run first "
                       f"(`/incident abort RUN-n`).", field="subject")
    matches = [matching_flow_schema(schemas, req, levels) for req in
               _sample_requests(subject, p["verbs"], p["resources"], p["api_groups"])]
    current = min((m for m in matches if m is not None), key=precedence, default=None)
    current_name = current["metadata"]["name"] if current else "catch-all"
    current_prec = precedence(current) if current else manifests.MAX_PRECEDENCE
    current_level = current["spec"]["priorityLevelConfiguration"]["name"] if current else "catch-all"
    if current_prec <= manifests.MIN_PRECEDENCE:
        raise BadInput(f"{subject}'s requests land in {current_name} (precedence {current_prec}); a throttle "
                       f"must stay above precedence 2, so it cannot outrank that schema.", field="subject")
    prec = p["precedence"] if p["precedence"] is not None else current_prec - 1
    if prec >= current_prec:
        raise BadInput(f"parameter `precedence`: must be below {current_prec} (of {current_name}, which "
                       f"catches {subject} now), not {prec}.", field="precedence")
    annotations = {"incident-bot/subject": str(subject), "incident-bot/ttl": format_duration(p["ttl"])}
    if ctx.incident.get("id"):
        annotations["incident-bot/incident"] = ref_of(ctx.incident['id'])
    plc = manifests.priority_level(name, api_version=api_version, shares=p["shares"], limit=p["limit"],
                                   queue_length=p["queue_length"], annotations=annotations)
    fs = manifests.flow_schema(name, api_version=api_version, subject=subject, precedence=prec, verbs=p["verbs"],
                               api_groups=p["api_groups"], resources=p["resources"], annotations=annotations)
    schema_version = manifests.validate(plc, kubernetes_version)
    manifests.validate(fs, kubernetes_version)
    limit = ("reject beyond the limit (429)" if p["limit"] == "reject"
             else f"1 queue of {p['queue_length']}")
    return Plan(
        changes=[{"action": "create", "kind": "PriorityLevelConfiguration", "name": name, "manifest": plc},
                 {"action": "create", "kind": "FlowSchema", "name": name, "manifest": fs}],
        lines=[f"create PriorityLevelConfiguration {name} ({api_version}): {p['shares']} shares, nothing lent "
               f"or borrowed, {limit}",
               f"create FlowSchema {name} at precedence {prec} (now {subject} lands in {current_name} @ "
               f"{current_prec} → {current_level}) for {','.join(p['verbs'])} on "
               f"{','.join(p['resources'])} ({','.join(x or 'core' for x in p['api_groups'])})",
               f"remove both after {format_duration(p['ttl'])}"],
        impact={"objects": 2, "subjects": 1},
        facts={"name": name, "api_version": api_version, "kubernetes_version": kubernetes_version,
               "schema_version": schema_version, "subject": str(subject),
               "current": {"flow_schema": current_name, "precedence": current_prec, "priority_level": current_level},
               "probe": _probe(subject, p["verbs"], p["resources"], p["api_groups"])},
        rollback=[f"delete FlowSchema {name}", f"delete PriorityLevelConfiguration {name}"],
    )


def _kube(ctx: StepContext) -> Any:
    return ctx.tools.kubernetes(ctx.cluster)


def _manifest(ctx: StepContext, kind: str) -> dict[str, Any]:
    return next(c["manifest"] for c in ctx.changes if c["kind"] == kind)


def _ours(obj: dict | None) -> bool:
    return obj is not None and ((obj.get("metadata") or {}).get("labels") or {}).get(
        "app.kubernetes.io/managed-by") == manifests.MANAGED_BY["app.kubernetes.io/managed-by"]


def _dry_run(ctx: StepContext) -> dict[str, Any]:
    kube = _kube(ctx)
    kube.create_priority_level(_manifest(ctx, "PriorityLevelConfiguration"), dry_run=True)
    kube.create_flow_schema(_manifest(ctx, "FlowSchema"), dry_run=True)
    return {"server_dry_run": "accepted"}


def _plc_exists(ctx: StepContext) -> bool:
    obj = _kube(ctx).get_priority_level(ctx.facts["name"])
    if obj is not None and not _ours(obj):
        raise StepFailed(f"PriorityLevelConfiguration {ctx.facts['name']} exists and is not the bot's")
    return obj is not None


def _create_plc(ctx: StepContext) -> dict[str, Any]:
    created = _kube(ctx).create_priority_level(_manifest(ctx, "PriorityLevelConfiguration"))
    return {"uid": (created.get("metadata") or {}).get("uid")}


def _delete_plc(ctx: StepContext) -> None:
    kube, name = _kube(ctx), ctx.facts["name"]
    if _ours(kube.get_priority_level(name)):
        kube.delete_priority_level(name)


def _fs_exists(ctx: StepContext) -> bool:
    obj = _kube(ctx).get_flow_schema(ctx.facts["name"])
    if obj is not None and not _ours(obj):
        raise StepFailed(f"FlowSchema {ctx.facts['name']} exists and is not the bot's")
    return obj is not None


def _create_fs(ctx: StepContext) -> dict[str, Any]:
    created = _kube(ctx).create_flow_schema(_manifest(ctx, "FlowSchema"))
    return {"uid": (created.get("metadata") or {}).get("uid")}


def _delete_fs(ctx: StepContext) -> None:
    kube, name = _kube(ctx), ctx.facts["name"]
    if _ours(kube.get_flow_schema(name)):
        kube.delete_flow_schema(name)


def _landing(ctx: StepContext, kube: Any, name: str, probe: dict[str, Any]) -> Any:
    """Where APF puts the client's requests, asked until they land in ``name`` or the wait is over.

    The apiserver applies a new FlowSchema asynchronously (its APF controller digests the
    informers' events), so the first request after the create may still be classified by the
    old configuration: a loaded apiserver took more than one request's time to switch.
    """
    _, landed = poll_until(lambda: kube.classify(probe["user"], probe["groups"], path=probe["path"]),
                           lambda where: where.flow_schema == name, seconds=ADOPTION_WAIT_SECONDS,
                           every=ADOPTION_POLL_SECONDS, step_deadline=ctx.deadline)
    return landed


def verify(ctx: StepContext) -> Verdict:
    kube, name, probe = _kube(ctx), ctx.facts["name"], ctx.facts["probe"]
    fs = kube.get_flow_schema(name)
    if fs is None:
        return Verdict(False, f"FlowSchema {name} is gone")
    dangling = is_dangling(fs)
    if dangling is None:
        dangling = name in kube.dangling_flow_schemas()
    if dangling:
        return Verdict(False, f"FlowSchema {name} is dangling (its priority level is missing)")
    landed = _landing(ctx, kube, name, probe)
    data = {"flow_schema": landed.flow_schema, "priority_level": landed.priority_level,
            "impersonated": probe["user"], "path": probe["path"]}
    if landed.flow_schema != name:
        return Verdict(False, f"requests of {ctx.facts['subject']} still land in {landed.flow_schema or 'no schema'}"
                       f" (checked as {probe['user']})", data)
    return Verdict(True, f"requests of {ctx.facts['subject']} now land in FlowSchema {name} → priority level "
                   f"{landed.priority_level} (checked by impersonating {probe['user']})", data)


PLAYBOOK = Playbook(
    name="throttle-client",
    summary="throttle one API client (user, group or service account) with its own APF priority level",
    risk="high",
    params=PARAMS,
    plan=plan,
    steps=(
        Step("validate on the server", do=_dry_run, repeatable=True, timeout=20,
             describe="server-side dry run (?dryRun=All) of both objects"),
        Step("create priority level", do=_create_plc, check=_plc_exists, undo=_delete_plc, timeout=20,
             describe="create the dedicated PriorityLevelConfiguration"),
        Step("create flow schema", do=_create_fs, check=_fs_exists, undo=_delete_fs, timeout=20,
             describe="create the FlowSchema that outranks the client's current one"),
    ),
    verify=verify,
    blast_radius={"objects": 2, "subjects": 1},
    ttl_param="ttl",
    details="APF cannot match User-Agent or source IP (research A.6): only users, groups and service "
            "accounts. Watches are barely limited by APF. Never targets system:masters, system:nodes, "
            "control-plane users or kube-system service accounts.",
)
