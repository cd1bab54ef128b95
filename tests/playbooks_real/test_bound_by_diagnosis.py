"""The playbooks are what the SOPs' conclusions propose: diagnosis -> proposed run -> approval -> outcome."""

from __future__ import annotations

from bot.core.config.clusters import ApiserverGroups
from tests.playbooks_real.conftest import CLUSTER, Lab
from tests.playbooks_real.test_failover_apiserver import states
from tests.playbooks_real.test_restore_etcd import destroy_etcd, keys_of, put_keys, take_snapshot
from tests.support.components import served_by


def test_apiserver_unavailable_proposes_the_failover_and_it_runs(lab: Lab) -> None:
    lab.bot.settings.clusters[CLUSTER].apiservers = ApiserverGroups(main=[lab.main.url], bypass=[lab.bypass.url])
    lab.main.close()
    lab.chat.say("alice", f"/incident declare apiservers unreachable --severity sev1 --cluster {CLUSTER}")
    lab.chat.say("alice", "/incident ack")

    reply = lab.chat.say("alice", "/incident diagnose --sop apiserver-unavailable")

    runs = lab.engine.service.runs()
    assert [(r.playbook, r.params, r.state) for r in runs] == [("failover-apiserver", {"mode": "drain"},
                                                                "awaiting_approval")], reply
    lab.chat.say("alice", f"/incident approve RUN-{runs[0].id}")
    assert lab.run_row(runs[0].id).state == "succeeded", lab.run_row(runs[0].id).error
    assert states(lab) == {"main": "drain", "bypass": "ready"}
    assert served_by(lab.frontend) == "bypass"


def test_etcd_quorum_lost_proposes_the_restore_and_it_runs(lab: Lab) -> None:
    put_keys(lab, "before", 10)
    take_snapshot(lab)
    snapshot_keys = keys_of(lab.etcd.endpoints)
    destroy_etcd(lab)
    lab.chat.say("alice", f"/incident declare etcd down --severity sev1 --cluster {CLUSTER}")
    lab.chat.say("alice", "/incident ack")

    reply = lab.chat.say("alice", "/incident diagnose --sop etcd-health")

    proposed = [r for r in lab.engine.service.runs() if r.playbook == "restore-etcd"]
    assert len(proposed) == 1 and proposed[0].state == "awaiting_approval", reply
    lab.chat.say("alice", f"/incident approve RUN-{proposed[0].id}")
    lab.chat.say("bob", f"/incident approve RUN-{proposed[0].id}")
    assert lab.run_row(proposed[0].id).state == "succeeded", lab.run_row(proposed[0].id).error
    assert keys_of(lab.etcd.endpoints) == snapshot_keys
