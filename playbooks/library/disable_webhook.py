"""disable-webhook: let writes through an admission webhook whose backend is down.

A ``ValidatingWebhookConfiguration`` (or Mutating) with ``failurePolicy:
Fail`` whose service does not answer makes the apiserver refuse every write
the webhook's rules match ("failed calling webhook ...").  The plan saves the
whole object as it is now; the step sets the failing webhook's
``failurePolicy`` to ``Ignore`` (the apiserver then admits requests when the
call fails, and still asks the webhook when it answers again); verify writes a
ConfigMap through the apiserver; rollback puts the saved object back
(``failurePolicy: Fail`` again) by replacing the object with the saved spec.

The object is replaced with its ``resourceVersion``: if someone edits it
between plan and run, the replace fails with a conflict instead of
overwriting their change.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from bot.core.errors import BadInput, IntegrationError, StepFailed
from playbooks.engine.declaration import Plan, PlanContext, Playbook, Step, StepContext, Verdict
from playbooks.engine.params import Param

API_VERSION = "admissionregistration.k8s.io/v1"
KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
PROBE_NAMESPACE = "incident-bot-probe"


def _dns_name(value: str) -> str:
    if not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", value) or len(value) > 253:
        raise ValueError(f"`{value}` is not a webhook name (lower-case DNS name, e.g. deny.example.com)")
    return value


PARAMS = (
    Param("webhook", "the webhook the apiserver fails to call (as in \"failed calling webhook NAME\")",
          example="validate.policy.example.com", from_diagnosis=("webhook",), check=_dns_name),
    Param("configuration", "the configuration that holds it (default: found by the webhook's name)",
          default=None, check=_dns_name),
)


def _find(kube: Any, webhook: str, configuration: str | None) -> tuple[str, dict[str, Any]]:
    """The (kind, object) holding ``webhook``; exactly one must."""
    found = []
    for kind in KINDS:
        for obj in kube.list_objects(API_VERSION, kind):
            if configuration and obj["metadata"]["name"] != configuration:
                continue
            if any(w.get("name") == webhook for w in obj.get("webhooks") or []):
                found.append((kind, {**obj, "apiVersion": API_VERSION, "kind": kind}))  # list items carry neither
    if not found:
        where = f"configuration {configuration}" if configuration else "any webhook configuration"
        raise BadInput(f"parameter `webhook`: no webhook named {webhook} in {where}.", field="webhook")
    if len(found) > 1:
        names = ", ".join(f"{k} {o['metadata']['name']}" for k, o in found)
        raise BadInput(f"parameter `configuration`: webhook {webhook} is in several configurations ({names}); "
                       "name one.", field="configuration")
    return found[0]


def _saved(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as it can be PUT back: no status, no server-managed metadata."""
    out = copy.deepcopy(obj)
    meta = out.get("metadata") or {}
    for key in ("managedFields", "uid", "creationTimestamp", "generation", "resourceVersion"):
        meta.pop(key, None)
    return out


def plan(ctx: PlanContext) -> Plan:
    kube = ctx.tools.kubernetes(ctx.cluster)
    webhook = ctx.params["webhook"]
    kind, obj = _find(kube, webhook, ctx.params["configuration"])
    name = obj["metadata"]["name"]
    hook = next(w for w in obj["webhooks"] if w.get("name") == webhook)
    policy = hook.get("failurePolicy", "Fail")
    if policy == "Ignore":
        raise BadInput(f"parameter `webhook`: {webhook} in {kind} {name} has failurePolicy Ignore already; "
                       "it cannot block writes when its backend is down.", field="webhook")
    service = (hook.get("clientConfig") or {}).get("service") or {}
    target = (f"service {service.get('namespace')}/{service.get('name')}" if service
              else (hook.get("clientConfig") or {}).get("url", "?"))
    return Plan(
        changes=[{"action": "update", "kind": kind, "name": name, "webhook": webhook,
                  "field": "failurePolicy", "from": policy, "to": "Ignore", "saved": _saved(obj)}],
        lines=[f"save {kind} {name} as it is now ({len(obj['webhooks'])} webhooks)",
               f"set failurePolicy of webhook {webhook} (calls {target}) from {policy} to Ignore: the apiserver "
               "admits requests when the call fails",
               f"verify: a ConfigMap can be written in {PROBE_NAMESPACE}"],
        impact={"objects": 1, "webhooks": 1},
        facts={"kind": kind, "name": name, "webhook": webhook, "policy": policy, "target": target},
        rollback=[f"put the saved {kind} {name} back (failurePolicy {policy})"],
    )


def _kube(ctx: StepContext) -> Any:
    return ctx.tools.kubernetes(ctx.cluster)


def _current(ctx: StepContext) -> dict[str, Any]:
    obj = _kube(ctx).get_object(API_VERSION, ctx.facts["kind"], ctx.facts["name"])
    if obj is None:
        raise StepFailed(f"{ctx.facts['kind']} {ctx.facts['name']} is gone")
    return obj


def _ignored(ctx: StepContext) -> bool:
    hook = next((w for w in _current(ctx).get("webhooks") or [] if w.get("name") == ctx.facts["webhook"]), None)
    if hook is None:
        raise StepFailed(f"webhook {ctx.facts['webhook']} is no longer in {ctx.facts['name']}")
    return hook.get("failurePolicy") == "Ignore"


def _set_ignore(ctx: StepContext) -> dict[str, Any]:
    obj = _current(ctx)
    for hook in obj.get("webhooks") or []:
        if hook.get("name") == ctx.facts["webhook"]:
            hook["failurePolicy"] = "Ignore"
    obj.pop("status", None)
    (obj.get("metadata") or {}).pop("managedFields", None)
    updated = _kube(ctx).replace_object(obj)  # with its resourceVersion: a concurrent edit is a conflict
    return {"resourceVersion": (updated.get("metadata") or {}).get("resourceVersion")}


def _restore(ctx: StepContext) -> None:
    """Put the saved object back (the current resourceVersion, the saved everything else)."""
    saved = copy.deepcopy(ctx.changes[0]["saved"])
    kube = _kube(ctx)
    current = kube.get_object(API_VERSION, ctx.facts["kind"], ctx.facts["name"])
    if current is None:
        kube.create_object(saved)
        return
    saved.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
    kube.replace_object(saved)


def _dry_run(ctx: StepContext) -> dict[str, Any]:
    obj = _current(ctx)
    for hook in obj.get("webhooks") or []:
        if hook.get("name") == ctx.facts["webhook"]:
            hook["failurePolicy"] = "Ignore"
    _kube(ctx).replace_object(obj, dry_run=True)
    return {"server_dry_run": "accepted"}


def verify(ctx: StepContext) -> Verdict:
    kube = _kube(ctx)
    policy = "Ignore" if _ignored(ctx) else "not Ignore"
    try:
        result = kube.write_probe(PROBE_NAMESPACE)
    except IntegrationError as exc:
        return Verdict(False, f"writes still fail after setting failurePolicy {policy}: {exc}",
                       {"error": str(exc)[:500]})
    steps = ", ".join(f"{s.operation} {s.seconds * 1000:.0f} ms" for s in result.steps)
    return Verdict(True, f"writes succeed again ({steps}); webhook {ctx.facts['webhook']} in {ctx.facts['name']} "
                   f"has failurePolicy {policy}", {"steps": steps})


PLAYBOOK = Playbook(
    name="disable-webhook",
    summary="let writes through an admission webhook whose backend is down (failurePolicy Ignore), reversibly",
    risk="high",
    params=PARAMS,
    plan=plan,
    steps=(
        Step("validate on the server", do=_dry_run, repeatable=True, timeout=20,
             describe="server-side dry run (?dryRun=All) of the changed configuration"),
        Step("set failurePolicy Ignore", do=_set_ignore, check=_ignored, undo=_restore, timeout=20,
             describe="replace the configuration with the failing webhook's failurePolicy set to Ignore"),
    ),
    verify=verify,
    blast_radius={"objects": 1, "webhooks": 1},
    details="While the policy is Ignore the webhook's checks are skipped whenever its backend fails: "
            "repair the backend, then roll back (`/incident abort RUN-n` or the run's rollback) to enforce "
            "them again.",
)
