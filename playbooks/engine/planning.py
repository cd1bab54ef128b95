"""The dry run: compute the exact changes, check the blast radius, render and hash.

The plan document is what approvals bind to: its hash is the sha256 of its
canonical JSON (sorted keys, no whitespace), so the same changes always give
the same hash and any difference -- one more object, another precedence --
gives another one and needs a new approval.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from bot.core.errors import BadInput, IncidentBotError, IntegrationError
from playbooks.engine.declaration import Plan, PlanContext, Playbook
from playbooks.engine.params import format_duration


@dataclass(frozen=True)
class ComputedPlan:
    document: dict[str, Any]
    text: str
    hash: str


def canonical_json(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def plan_hash(document: Any) -> str:
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def check_blast_radius(playbook: Playbook, plan: Plan) -> None:
    """Every declared limit must be measured by the plan and within bounds."""
    for key, limit in playbook.blast_radius.items():
        if key not in plan.impact:
            raise IncidentBotError(f"playbook {playbook.name} declares a blast-radius limit on {key} "
                                   f"but its plan does not measure it")
        if plan.impact[key] > limit:
            raise BadInput(f"the plan touches {plan.impact[key]} {key}; {playbook.name} allows at most "
                           f"{limit}. Narrow the parameters.", field=key)


def compute(playbook: Playbook, ctx: PlanContext) -> ComputedPlan:
    try:
        plan = playbook.plan(ctx)
    except IntegrationError as exc:
        raise IntegrationError(f"cannot plan {playbook.name} on cluster {ctx.cluster}: {exc}") from exc
    check_blast_radius(playbook, plan)
    document = {
        "playbook": playbook.name,
        "risk": playbook.risk,
        "cluster": ctx.cluster,
        "params": ctx.params,
        "changes": plan.changes,
        "facts": plan.facts,
        "impact": plan.impact,
        "rollback": plan.rollback,
        "steps": [s.name for s in playbook.steps],
    }
    # normalise through JSON so the stored document and the hashed one are identical
    document = json.loads(canonical_json(document))
    digest = plan_hash(document)
    return ComputedPlan(document, render(playbook, ctx, plan, digest), digest)


def render(playbook: Playbook, ctx: PlanContext, plan: Plan, digest: str) -> str:
    lines = [f"{playbook.name} on cluster {ctx.cluster} ({playbook.risk} risk) — plan {digest[:12]}"]
    shown = {k: (format_duration(v) if p.type == "duration" else v) for p in playbook.params
             for k, v in ctx.params.items() if k == p.name and v is not None}
    if shown:
        lines.append("parameters: " + ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                                                for k, v in shown.items()))
    lines.append("changes:")
    lines += [f"  {i}. {line}" for i, line in enumerate(plan.lines, 1)]
    if playbook.blast_radius:
        lines.append("blast radius: " + ", ".join(
            f"{plan.impact.get(k, 0)} {k} (limit {v})" for k, v in playbook.blast_radius.items()))
    if plan.rollback:
        lines.append("rollback: " + "; then ".join(plan.rollback))
    lines.append("steps: " + " → ".join(s.name for s in playbook.steps))
    return "\n".join(lines)
