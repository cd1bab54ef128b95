"""Acting on a cluster: who may approve a playbook run, how the engine runs, scheduled drills."""

from __future__ import annotations


from pydantic import Field

from bot.core.config.base import Section


class Approvers(Section):
    """Who may approve playbook runs, besides the incident commander."""

    users: list[str] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    allow_rota: bool = True
    approval_ttl_seconds: float = Field(900, gt=0)


class PlaybookSettings(Section):
    """The playbook engine: worker cadence, crash detection, the cluster lease, drills."""

    worker_interval_seconds: float = Field(1, gt=0)
    stale_after_seconds: float = Field(30, gt=0)  # a running run whose owner is silent this long is orphaned
    lease_seconds: float = Field(120, gt=0)  # one mitigation per cluster; renewed by the owner's heartbeat
    request_ttl_seconds: float = Field(3600, gt=0)  # an unapproved request expires after this
    default_step_timeout_seconds: float = Field(60, gt=0)
    auto_approve_drills: bool = True  # runs on drill incidents need no human (recorded as auto-approved)


class Drills(Section):
    """Scheduled fault drills in ``serve``: every ``interval_seconds`` the next scenario runs on ``cluster``.

    ``cluster`` must be in ``clusters`` with ``drill_target: true``, or be
    ``sandbox``: a local control plane the drill starts and throws away.
    """

    enabled: bool = False
    interval_seconds: float = Field(86400, gt=0)
    scenarios: list[str] = Field(default_factory=lambda: ["etcd-member-down", "etcd-quorum-loss",
                                                         "apiserver-down", "client-flood"])
    cluster: str = "sandbox"
    out_dir: str = "drills"  # scorecards and post-mortems, one directory per drill
