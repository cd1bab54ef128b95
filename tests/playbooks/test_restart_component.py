"""restart-component in chat: a stuck kube-scheduler restarted through the cluster's component
controller, verified by its leader Lease (``FakeComponents`` restarts; a Lease-holding stand-in
of the Kubernetes API renews it from a new holder, as a restarted scheduler would)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bot.compose.app.bot import Bot
from bot.chat import handlers_playbooks
from bot.chat.memory import MemoryChat
from integrations.clients.components import CommandComponentController, FakeComponents
from playbooks.engine.toolbox import Toolbox
from tests.playbooks.conftest import diagnosed_incident
from playbooks.engine import Registry
from playbooks.library import restart_component


class LeaseApi:
    """The one object the playbook reads: ``kube-system/kube-scheduler``'s Lease."""

    host = "https://stand-in"

    def __init__(self) -> None:
        self.holder, self.renewed = "scheduler-a", datetime.now(timezone.utc) - timedelta(seconds=40)

    def get_object(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return {"spec": {"holderIdentity": self.holder, "leaseDurationSeconds": 15,
                         "renewTime": self.renewed.isoformat().replace("+00:00", "Z")}}

    def close(self) -> None:
        pass


class Components(FakeComponents):
    def __init__(self, lease: LeaseApi, *, takes_over: bool = True) -> None:
        super().__init__({"kube-scheduler": True, "kube-controller-manager": True})
        self.lease, self.takes_over = lease, takes_over

    def restart(self, name: str) -> None:
        super().restart(name)
        if self.takes_over:  # the new process acquires the Lease
            self.lease.holder, self.lease.renewed = "scheduler-b", datetime.now(timezone.utc)


@pytest.fixture
def wired(pb_bot: Bot, pchat: MemoryChat, monkeypatch: pytest.MonkeyPatch) -> tuple[MemoryChat, LeaseApi, Components]:
    lease = LeaseApi()
    components = Components(lease)
    tools = Toolbox(pb_bot.settings, kubernetes=lambda cluster: lease, component_controller=lambda cluster: components)
    handlers_playbooks.install(pb_bot, registry=Registry([restart_component.PLAYBOOK]), tools=tools)
    monkeypatch.setattr("playbooks.library.restart_component.LEADER_WAIT_SECONDS", 1.0)
    return pchat, lease, components


def test_a_stuck_scheduler_is_restarted_and_verified_by_a_new_lease_holder(wired, pb_bot: Bot) -> None:
    chat, lease, components = wired
    inc = diagnosed_incident(chat, "alice", title="pods stay Pending")
    plan = chat.say("alice", "/incident run restart-component component=kube-scheduler")
    assert "restart kube-scheduler on default (the cluster's component controller)" in plan
    assert "leader Lease kube-system/kube-scheduler held by scheduler-a" in plan and ": stale" in plan
    assert chat.say("alice", "/incident approve RUN-1") == "RUN-1 approved by @alice; it starts now."
    assert components.calls == [("restart", "kube-scheduler")]
    _, events = pb_bot.services.incidents.timeline(inc)
    verified = [e.text for e in events if "verified" in e.text and e.kind.startswith("run.")]
    assert verified and "kube-scheduler leads again: scheduler-b renewed kube-system/kube-scheduler" in verified[0]
    assert pb_bot.services.incidents.get(inc).state == "mitigated"


def test_a_restart_nobody_takes_over_fails_and_says_the_lease_is_not_renewed(wired, pb_bot: Bot) -> None:
    chat, lease, components = wired
    components.takes_over = False
    inc = diagnosed_incident(chat, "alice", title="pods stay Pending")
    chat.say("alice", "/incident run restart-component")
    chat.say("alice", "/incident approve RUN-1")
    _, events = pb_bot.services.incidents.timeline(inc)
    failed = [e.text for e in events if e.kind.startswith("run.") and "wait-leader" in e.text]
    assert any("kube-system/kube-scheduler is not renewed by a new holder (holder scheduler-a" in t for t in failed)
    assert pb_bot.services.incidents.get(inc).state != "mitigated"


def test_a_bad_component_name_names_the_parameter_and_changes_nothing(wired) -> None:
    chat, _, components = wired
    diagnosed_incident(chat, "alice")
    answer = chat.say("alice", "/incident run restart-component component=etcd")
    assert "component" in answer and "kube-scheduler" in answer and "kube-controller-manager" in answer
    assert components.calls == []


def test_command_templates_quote_the_component_and_refuse_unknown_fields() -> None:
    controller = CommandComponentController(start="ssh cp-1 systemctl start {component}",
                                            stop="ssh cp-1 systemctl stop {component}",
                                            is_running="ssh cp-1 systemctl is-active {component}")
    assert controller.render("stop", "kube-scheduler; rm -rf /") == "ssh cp-1 systemctl stop 'kube-scheduler; rm -rf /'"
    with pytest.raises(Exception, match=r"uses \{host\}; the only field is \{component\}"):
        CommandComponentController(start="ssh {host} start", stop="x {component}", is_running="y {component}")
