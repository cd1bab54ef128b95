"""The approval policy (design.md, "Approvals"), as pure functions of rows and settings.

* low and high risk: the incident commander approves.
* critical: the commander and a second, different approver; nobody approves a
  critical run they requested themselves.
* Who may be the second approver: ``settings.approvers.users``, members of
  ``settings.approvers.groups``, and (``allow_rota``) everyone on the on-call
  rota.
* An approval binds to the plan hash it was given for and expires after
  ``settings.approvers.approval_ttl_seconds``; only approvals of the current
  plan that have not expired count.
* Unattended drills are approved by the bot itself (``auto_approved``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.core.config import Settings
from bot.core.errors import PermissionDenied
from bot.core.store.models import Approval, PlaybookRun

AUTO_APPROVER = "incident-bot"


def run_ref(run: PlaybookRun) -> str:
    return f"RUN-{run.id}"


def is_configured_approver(user: str, settings: Settings) -> bool:
    """Approvers from configuration (not counting the commander of a given incident)."""
    cfg = settings.approvers
    if user in cfg.users:
        return True
    if any(user in members for members in cfg.groups.values()):
        return True
    return bool(cfg.allow_rota and user in settings.oncall.rota)


def check_may_approve(run: PlaybookRun, user: str, *, commander: str | None, settings: Settings) -> None:
    """Raise PermissionDenied with the rule that forbids ``user`` approving ``run``."""
    ref = run_ref(run)
    if commander is None:
        raise PermissionDenied(f"{ref} cannot be approved yet: its incident has no commander. "
                               f"Take command with `/incident ack` first.")
    if run.risk == "critical":
        if user == run.requested_by and user == commander:
            raise PermissionDenied(f"you requested {ref}; nobody approves their own critical run. You are its "
                                   f"commander: hand command over (`/incident assign commander @someone`) so the "
                                   f"new commander and a second approver can approve it, or reject it and let "
                                   f"another responder request it.")
        if user == run.requested_by:
            raise PermissionDenied(f"you requested {ref}; nobody approves their own critical run. "
                                   f"It needs the commander @{commander} and a second approver.")
        if user != commander and not is_configured_approver(user, settings):
            raise PermissionDenied(f"@{user} is not an approver (settings.approvers: users, groups, on-call rota); "
                                   f"{ref} needs the commander @{commander} and a second approver.")
        return
    if user != commander:
        raise PermissionDenied(f"only the commander @{commander} can approve {ref} ({run.risk} risk).")


def check_may_reject(run: PlaybookRun, user: str, *, commander: str | None, settings: Settings) -> None:
    if user in (commander, run.requested_by) or is_configured_approver(user, settings):
        return
    raise PermissionDenied(f"@{user} may not reject {run_ref(run)}: the commander, the requester or an "
                           f"approver can.")


def valid_approvals(run: PlaybookRun, approvals: Iterable[Approval], now: datetime) -> list[Approval]:
    """Approvals that count now: for the current plan hash, not expired, not revoked."""
    out = []
    for a in approvals:
        if a.decision != "approve" or a.plan_hash != run.plan_hash:
            continue
        if a.expires_at is not None and a.expires_at <= now:
            continue
        out.append(a)
    return out


@dataclass(frozen=True)
class PolicyStatus:
    satisfied: bool
    approvers: tuple[str, ...]
    missing: str  # what is still needed, as a sentence ("" when satisfied)


def status(run: PlaybookRun, approvals: Iterable[Approval], *, commander: str | None,
           now: datetime) -> PolicyStatus:
    valid = valid_approvals(run, approvals, now)
    users = tuple(dict.fromkeys(a.user for a in valid))
    if run.auto_approved and AUTO_APPROVER in users:
        return PolicyStatus(True, users, "")
    has_commander = commander is not None and commander in users
    if run.risk != "critical":
        if has_commander:
            return PolicyStatus(True, users, "")
        return PolicyStatus(False, users, f"the commander @{commander}'s approval" if commander
                            else "a commander (`/incident ack`) and their approval")
    others = [u for u in users if u != commander and u != run.requested_by]
    if has_commander and others:
        return PolicyStatus(True, users, "")
    need = []
    if not has_commander:
        need.append(f"the commander @{commander}'s approval" if commander else "a commander and their approval")
    if not others:
        need.append("a second approver (not the commander, not the requester)")
    return PolicyStatus(False, users, " and ".join(need))


def expired_for(run: PlaybookRun, approvals: Iterable[Approval], now: datetime) -> list[Approval]:
    """Approvals of the current plan that have expired (to say so in messages)."""
    return [a for a in approvals if a.decision == "approve" and a.plan_hash == run.plan_hash
            and a.expires_at is not None and a.expires_at <= now]
