"""The world the shipped playbooks act on, built from real parts, and what each run must leave in it.

``serve`` builds its playbook toolbox from settings alone, so everything here is
reached the way an operator configures it (``clusters.NAME``): the session's real
kube-apiserver through the bot's least-privilege kubeconfig (throttle-client,
disable-webhook, the restart-component Lease), a real HAProxy in front of two
apiserver stand-ins (failover-apiserver, failback-apiserver), a real 3-member
etcd 3.6 (snapshot-etcd, then restore-etcd with its members under command
templates and the apiservers cut at the same HAProxy: ``restore_world``), and
shell command templates for the component controller that append every stop and
start to a file (restart-component).

Each ``Case`` says how to open its run and how to read, afterwards, whether its
change happened exactly once as the world sees it (objects created once and
changed once, one snapshot file, one stop and one start, one restore holding
the snapshot's keys).
"""

from __future__ import annotations

import json
import uuid
from contextlib import closing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integrations.clients.haproxy import HAProxyLoadBalancer
from integrations.clients.kubernetes.client import KubernetesClient
from tests.reliability.restore_world import RestoreWorld
from tests.support.components import EtcdCluster, HAProxy, HAProxyBackend, StubApiserver
from tests.support.kube_apiserver import RealCluster
from tests.support.lagging_relay import LaggingUnixRelay

BACKEND = "kube_api_servers"
ADMISSION = "admissionregistration.k8s.io/v1"
FLOWCONTROL = "flowcontrol.apiserver.k8s.io/v1"
# each HAProxy runtime command takes this long for the bot, as on a remote LB: persist-state (one command)
# lasts long enough to be seen running from outside and killed there
RUNTIME_LAG = 0.05


@dataclass
class Case:
    """One playbook run: where, with what, and how its effects are judged."""

    playbook: str
    cluster: str
    title: str
    params: Callable[[], dict[str, Any]]
    effects: Callable[[dict[str, Any]], list[str]]  # the run's plan -> problems seen in the world
    before: Callable[[], None] = lambda: None        # the fault the incident is about
    # steps without a check that are not repeatable: a kill inside one is handed back, by design
    blind_steps: frozenset[int] = frozenset()
    requested_by: str = "alice"
    approvers: tuple[str, ...] = ("alice",)  # a critical run needs the commander and a second approver


@dataclass
class World:
    work: Path
    kube: RealCluster
    kubeconfig: Path
    haproxy: HAProxy
    main: StubApiserver
    bypass: StubApiserver
    etcd: EtcdCluster
    restore: RestoreWorld
    runtime: LaggingUnixRelay  # the bot reaches HAProxy's runtime API through it (every command 50 ms)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    @property
    def snapshots(self) -> Path:
        return self.work / "snapshots"

    @property
    def effects_log(self) -> Path:
        return self.work / "components.log"

    @property
    def webhook(self) -> str:
        return f"deny.h14-{self.tag}.example.com"

    @property
    def lease(self) -> str:
        return f"h14-scheduler-{self.tag}"

    @property
    def subject(self) -> str:
        return f"serviceaccount:h14-{self.tag}/noisy-controller"

    # -- settings ---------------------------------------------------------------------
    def clusters(self) -> dict[str, Any]:
        """``clusters:`` of the bot's YAML settings, one cluster per kind of world."""
        component = {"controller": "command", "lease": f"kube-system/{self.lease}",
                     "stop_command": f"sh {self.work / 'stop.sh'} {{component}}",
                     "start_command": f"sh {self.work / 'start.sh'} {{component}}",
                     "is_running_command": f"test -f {self.work / 'running'}/{{component}}",
                     "command_timeout_seconds": 30}
        lb = {"runtime": str(self.runtime.path), "backend": BACKEND, "main": ["main"], "bypass": ["bypass"],
              "state_file": str(self.haproxy.state_file), "frontend_url": self.haproxy.frontend_url(BACKEND),
              "server_scheme": "http"}
        return {
            "kube": {"kubeconfig": str(self.kubeconfig), "components": {"kube-scheduler": component}},
            "lb": {"loadbalancer": lb},
            "etcd": {"loadbalancer": lb,  # restore-etcd cuts the apiservers off there
                     "etcd": {"members": self.etcd.endpoints, "snapshots": {"dir": str(self.snapshots)},
                              "restore": self.restore.settings()}},
        }

    # -- the world before the runs ---------------------------------------------------------
    def prepare(self) -> None:
        run, log = self.work / "running", self.effects_log
        run.mkdir(exist_ok=True)
        (run / "kube-scheduler").touch()
        log.write_text("")
        self.restore.prepare()
        # the component "restarts": each call is appended to the log; the new process takes the Lease
        # 3 s after it starts (as a leader-elected scheduler does once it is up) and keeps renewing it
        # every 2 s while it runs
        (self.work / "stop.sh").write_text(f'echo "stop $1" >> {log} && rm -f {run}/"$1"\n')
        renew = (f"curl -sf --cacert {self.kube.ca_file} -H 'Authorization: Bearer {self.kube.admin_token}' "
                 "-X PATCH -H 'Content-Type: application/merge-patch+json' "
                 f"{self.kube.url}/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{self.lease} "
                 '-d "{\\"spec\\":{\\"holderIdentity\\":\\"scheduler-b\\",\\"renewTime\\":'
                 '\\"$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)\\"}}"')
        (self.work / "start.sh").write_text(
            f'echo "start $1" >> {log} && touch {run}/"$1" && '
            f'(sleep 3; while [ -f {run}/"$1" ]; do {renew}; sleep 2; done) > /dev/null 2>&1 < /dev/null &\n')
        with closing(self.admin()) as admin:
            admin.create_object({
                "apiVersion": ADMISSION, "kind": "ValidatingWebhookConfiguration", "metadata": {"name": self.webhook},
                "webhooks": [{"name": self.webhook, "failurePolicy": "Fail", "sideEffects": "None",
                              "admissionReviewVersions": ["v1"], "timeoutSeconds": 2,
                              "clientConfig": {"url": "https://127.0.0.1:1/validate"},
                              "namespaceSelector": {"matchLabels": {
                                  "kubernetes.io/metadata.name": "incident-bot-probe"}},
                              "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                         "resources": ["configmaps"]}]}]})
            admin.create_object({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.lease, "namespace": "kube-system"},
                "spec": {"holderIdentity": "scheduler-a", "leaseDurationSeconds": 15,
                         "renewTime": "2026-01-01T00:00:00.000000Z"}})

    def cleanup(self) -> None:
        """Cluster-wide objects of this world go (the apiserver is shared by the test session)."""
        for running in (self.work / "running").glob("*"):
            running.unlink()  # the component's Lease renewer ends with it
        self.restore.cleanup()
        self.runtime.close()
        with closing(self.admin()) as admin:
            admin.delete_object(ADMISSION, "ValidatingWebhookConfiguration", self.webhook)
            admin.delete_object("coordination.k8s.io/v1", "Lease", self.lease, "kube-system")
            for fs in self._flow_schemas(admin):
                admin.delete_object(FLOWCONTROL, "FlowSchema", fs["metadata"]["name"])
                admin.delete_object(FLOWCONTROL, "PriorityLevelConfiguration",
                                    fs["spec"]["priorityLevelConfiguration"]["name"])

    def admin(self) -> KubernetesClient:
        return self.kube.admin()

    def _flow_schemas(self, admin: KubernetesClient) -> list[dict[str, Any]]:
        account = self.subject.split(":", 1)[1]
        namespace, name = account.split("/")
        return [fs for fs in admin.list_objects(FLOWCONTROL, "FlowSchema")
                if any((s.get("serviceAccount") or {}) == {"namespace": namespace, "name": name}
                       for rule in fs["spec"].get("rules") or [] for s in rule.get("subjects") or [])]

    def lb_states(self) -> dict[str, str]:
        return {k: v.value for k, v in HAProxyLoadBalancer(self.haproxy.socket_path).read_states(BACKEND).items()}

    # -- the cases, in the order they run ------------------------------------------------
    def cases(self) -> list[Case]:
        return [
            Case("snapshot-etcd", "etcd", "etcd backups are overdue", dict, self._snapshot_effects),
            Case("throttle-client", "kube", "a client floods the apiserver", lambda: {"subject": self.subject},
                 self._throttle_effects),
            Case("disable-webhook", "kube", "writes fail: a webhook is down", lambda: {"webhook": self.webhook},
                 self._webhook_effects),
            Case("restart-component", "kube", "pods stay Pending: the scheduler is stuck",
                 lambda: {"component": "kube-scheduler"}, self._restart_effects, blind_steps=frozenset({0})),
            Case("failover-apiserver", "lb", "the main apiservers are not ready", lambda: {"mode": "maint"},
                 self._failover_effects, before=self._main_down),
            Case("failback-apiserver", "lb", "back to the main apiservers", dict, self._failback_effects,
                 before=self._main_up),
            Case("restore-etcd", "etcd", "etcd lost data: a script deleted keys", lambda: {"force": True},
                 self._restore_effects, before=self.restore.fault, requested_by="bob", approvers=("alice", "carol")),
        ]

    def _main_down(self) -> None:
        self.main.ready = False

    def _main_up(self) -> None:
        self.main.ready = True

    def _snapshot_effects(self, plan: dict[str, Any]) -> list[str]:
        files = sorted(p.name for p in self.snapshots.glob("*.db"))
        return [] if len(files) == 1 else [f"snapshot files: {files} (one expected)"]

    def _throttle_effects(self, plan: dict[str, Any]) -> list[str]:
        with closing(self.admin()) as admin:
            schemas = self._flow_schemas(admin)
            problems = [] if len(schemas) == 1 else [f"{len(schemas)} FlowSchemas for {self.subject}"]
            for fs in schemas:
                level = admin.get_object(FLOWCONTROL, "PriorityLevelConfiguration",
                                         fs["spec"]["priorityLevelConfiguration"]["name"])
                if level is None:
                    problems.append(f"FlowSchema {fs['metadata']['name']} has no priority level")
                generations = (fs["metadata"].get("generation"), (level or {}).get("metadata", {}).get("generation"))
                if generations != (1, 1):
                    problems.append(f"throttle objects changed after creation (generations {generations})")
        return problems

    def _webhook_effects(self, plan: dict[str, Any]) -> list[str]:
        with closing(self.admin()) as admin:
            obj = admin.get_object(ADMISSION, "ValidatingWebhookConfiguration", self.webhook) or {}
        policy = [w.get("failurePolicy") for w in obj.get("webhooks") or []]
        generation = (obj.get("metadata") or {}).get("generation")
        return [] if (policy, generation) == (["Ignore"], 2) else [f"webhook policy {policy}, generation {generation}"]

    def _restart_effects(self, plan: dict[str, Any]) -> list[str]:
        lines = self.effects_log.read_text().splitlines()
        return [] if lines == ["stop kube-scheduler", "start kube-scheduler"] else [f"component calls {lines}"]

    def _failover_effects(self, plan: dict[str, Any]) -> list[str]:
        states = self.lb_states()
        return [] if states == {"main": "maint", "bypass": "ready"} else [f"HAProxy states {json.dumps(states)}"]

    def _restore_effects(self, plan: dict[str, Any]) -> list[str]:
        return self.restore.effects(plan) + self._failback_effects(plan)  # the apiservers back as recorded

    def _failback_effects(self, plan: dict[str, Any]) -> list[str]:
        states = self.lb_states()
        return [] if states == {"main": "ready", "bypass": "ready"} else [f"HAProxy states {json.dumps(states)}"]


def build_world(work: Path, kube: RealCluster, kubeconfig: Path, make_stub: Callable[..., StubApiserver],
                make_haproxy: Callable[..., HAProxy], make_etcd: Callable[..., EtcdCluster]) -> World:
    main, bypass = make_stub("main"), make_stub("bypass")
    proxy = make_haproxy([HAProxyBackend(BACKEND, {"main": main.address}, {"bypass": bypass.address})])
    proxy.wait_checked()
    etcd = make_etcd(3)
    runtime = LaggingUnixRelay(proxy.socket_path, lag=RUNTIME_LAG).start()
    world = World(work, kube, kubeconfig, proxy, main, bypass, etcd, RestoreWorld(work, etcd), runtime)
    world.prepare()
    return world
