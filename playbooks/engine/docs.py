"""A playbook's documentation, rendered from its declaration (CLI ``playbooks show``, chat help)."""

from __future__ import annotations

from playbooks.engine.declaration import Playbook
from playbooks.engine.params import Param, format_duration


def _default(param: Param) -> str:
    if param.required:
        return "required"
    if param.default is None:
        return "default: automatic"
    if param.type == "duration":
        return f"default {format_duration(param.default)}"
    if isinstance(param.default, list):
        return f"default {','.join(map(str, param.default))}"
    return f"default {param.default}"


def describe(playbook: Playbook, *, default_timeout: float = 60) -> str:
    lines = [f"{playbook.name} — {playbook.summary}", f"risk: {playbook.risk} "
             + ("(the commander and a second approver)" if playbook.risk == "critical" else "(the commander approves)")]
    lines.append(f"usage: /incident run {playbook.usage()}")
    lines.append("parameters:")
    for p in playbook.params:
        lines.append(f"  {p.name} ({p.expected()}; {_default(p)}) — {p.help}"
                     + (f"; from diagnosis: {', '.join(p.from_diagnosis)}" if p.from_diagnosis else ""))
    lines.append("steps:")
    for i, s in enumerate(playbook.steps, 1):
        extras = [f"timeout {format_duration(s.timeout or default_timeout)}",
                  "idempotent (checks first)" if s.check else ("repeatable (changes nothing lasting)"
                                                               if s.repeatable else "not repeatable (hand back on crash)"),
                  "undo: yes" if s.undo else "undo: none"]
        lines.append(f"  {i}. {s.name} — {s.describe or s.name} [{'; '.join(extras)}]")
    undo = [s.name for s in reversed(playbook.steps) if s.undo]
    lines.append("rollback order: " + (" → ".join(f"undo {n}" for n in undo) if undo else "nothing to undo"))
    if playbook.blast_radius:
        lines.append("blast radius: " + ", ".join(f"at most {v} {k}" for k, v in playbook.blast_radius.items()))
    lines.append("verify: " + ("declared" if playbook.verify else "none (success = every step done)"))
    if playbook.ttl_param:
        lines.append(f"expiry: removed automatically after `{playbook.ttl_param}`")
    if playbook.details:
        lines.append(f"notes: {playbook.details}")
    return "\n".join(lines)
