"""Change correlation and the bad-webhook mitigation on the real kube-apiserver, as the bot's own user.

The session's kube-apiserver (``tests.support.kube_apiserver``) calls the webhook for real: a
``ValidatingWebhookConfiguration`` with ``failurePolicy: Fail`` pointing at a loopback port nobody
listens on refuses the bot's write probe with the apiserver's own words.  The change watch lists
as ``incident-bot`` (least privilege), and ``disable-webhook`` runs through the engine from chat.
Each test makes its own uniquely named configuration and removes it, so the shared server stays
clean; the webhook only matches ConfigMaps in the probe namespace.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.compose.app.bot import Bot, build_bot
from bot.chat import handlers_playbooks
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock, SystemClock
from bot.core.config import Settings
from bot.domain.diagnosis.changes import WATCHED, ChangeRecorder, before_t0, sentence
from bot.domain.diagnosis.library import Library
from bot.domain.diagnosis.ports import ClusterAccess
from bot.domain.diagnosis.runner import Runner
from bot.core.errors import IntegrationError
from bot.compose.sandbox.scenarios_webhook import API_VERSION, KIND, failing_webhook, policies
from bot.core.store import migrate
from bot.core.store.db import Database
from integrations.clients.kubernetes import KubernetesClient, connect
from playbooks.engine import Engine
from playbooks.engine import Registry
from playbooks.library import disable_webhook
from tests.playbooks.conftest import diagnosed_incident
from tests.support.kube_apiserver import RealCluster

PROBE_NS = "incident-bot-probe"
VWC = next(w for w in WATCHED if w.kind == KIND)


@pytest.fixture
def bot_kube(bot_kubeconfig: Path) -> Iterator[KubernetesClient]:
    client = connect(str(bot_kubeconfig), timeout=10.0)
    yield client
    client.close()


@pytest.fixture
def webhook(kube_apiserver: RealCluster, admin_kube: KubernetesClient) -> Iterator[dict]:
    """A failing webhook on ConfigMaps of the probe namespace (created by the test, removed after)."""
    manifest = failing_webhook(f"ib-test-{uuid.uuid4().hex[:8]}", ca_file=kube_apiserver.ca_file,
                               namespaces=[PROBE_NS])
    yield manifest
    admin_kube.delete_object(API_VERSION, KIND, manifest["metadata"]["name"])


def test_the_change_watch_sees_a_webhook_created_edited_and_deleted_and_ranks_it_first(
        sqlite_url: str, bot_kube: KubernetesClient, admin_kube: KubernetesClient, webhook: dict) -> None:
    db = Database(sqlite_url)
    migrate.upgrade(db)
    recorder = ChangeRecorder(db, "real", SystemClock())
    baseline = recorder.poll(bot_kube)  # the first listing: what exists, dated by managedFields
    ours = [c for c in baseline if c.kind == "ClusterRole" and c.name == "incident-bot"]
    assert ours and ours[0].source == "managedFields" and ours[0].change == "created"
    assert recorder.forbidden == set()  # every watched kind is readable as the bot (Pods: kube-system only)

    name = webhook["metadata"]["name"]
    admin_kube.create_object(webhook)
    created = [c for c in recorder.poll(bot_kube) if c.name == name]
    assert [(c.kind, c.change, c.source) for c in created] == [(KIND, "created", "watch")]

    current = admin_kube.get_object(API_VERSION, KIND, name)
    current["webhooks"][0]["timeoutSeconds"] = 3
    admin_kube.replace_object(current)
    assert [(c.change, c.source) for c in recorder.poll(bot_kube) if c.name == name] == [("updated", "watch")]
    assert recorder.poll(bot_kube) == []  # nothing changed: nothing recorded (status and managedFields never count)

    admin_kube.delete_object(API_VERSION, KIND, name)
    assert [c.change for c in recorder.poll(bot_kube) if c.name == name] == ["deleted"]
    admin_kube.create_object(webhook)  # the fixture deletes it again

    t0 = SystemClock().now() + timedelta(seconds=1)
    ranked = before_t0(db, "real", t0, window_seconds=1800, component="apiserver")
    assert (ranked[0]["kind"], ranked[0]["name"], ranked[0]["change"]) == (KIND, name, "deleted")
    assert sentence(ranked[0]).startswith(f"ValidatingWebhookConfiguration `{name}`, deleted ")


def test_a_control_plane_pods_image_change_is_seen_and_other_pods_are_not(
        sqlite_url: str, bot_kube: KubernetesClient, admin_kube: KubernetesClient) -> None:
    """Static control-plane pods belong to their Node: an image change of one is a change before T0."""
    db = Database(sqlite_url)
    migrate.upgrade(db)
    suffix = uuid.uuid4().hex[:6]
    node = admin_kube.create_object({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"cp-{suffix}"}})
    owner = {"apiVersion": "v1", "kind": "Node", "name": node["metadata"]["name"], "uid": node["metadata"]["uid"]}

    def pod(name: str, image: str, owners: list[dict]) -> dict:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "kube-system", "ownerReferences": owners},
                "spec": {"nodeName": node["metadata"]["name"],
                         "containers": [{"name": "main", "image": image}]}}
    static = admin_kube.create_object(pod(f"kube-apiserver-{suffix}", "registry.k8s.io/kube-apiserver:v1.35.3", [owner]))
    admin_kube.create_object(pod(f"someones-app-{suffix}", "nginx:1", []))
    try:
        recorder = ChangeRecorder(db, "real", SystemClock())
        recorder.poll(bot_kube)
        static["spec"]["containers"][0]["image"] = "registry.k8s.io/kube-apiserver:v1.35.4"
        admin_kube.replace_object(static)
        seen = [(c.kind, c.name, c.change) for c in recorder.poll(bot_kube) if c.name.endswith(suffix)]
        assert seen == [("Pod", f"kube-apiserver-{suffix}", "image")]  # the image changed; the other pod is no change
    finally:
        for name in (f"kube-apiserver-{suffix}", f"someones-app-{suffix}"):
            admin_kube.delete_object("v1", "Pod", name, "kube-system")
        admin_kube.delete_object("v1", "Node", node["metadata"]["name"])


def test_the_write_probe_and_the_procedure_name_the_webhook_and_the_change(
        bot_kube: KubernetesClient, admin_kube: KubernetesClient, webhook: dict) -> None:
    admin_kube.create_object(webhook)
    hook = webhook["webhooks"][0]["name"]
    with pytest.raises(IntegrationError, match=f'failed calling webhook "{hook}".*connection refused'):
        bot_kube.write_probe(PROBE_NS)

    procedure = Library.load([]).get("admission-webhook")
    access = ClusterAccess("real", {"name": "real"}, kubernetes=bot_kube)
    change = {"kind": KIND, "namespace": None, "name": webhook["metadata"]["name"], "change": "created",
              "seconds_before_t0": 130.0}
    outcome = Runner(access, FakeClock()).run(procedure, {"id": 1, "changes": [change]})
    assert outcome.playbook == "disable-webhook" and outcome.params == {"webhook": hook}
    assert f"cannot call admission webhook {hook}" in outcome.cause and "connection refused" in outcome.cause
    assert outcome.cause.endswith(f"changed before T0: {KIND} {webhook['metadata']['name']}, created 130s before")


@pytest.fixture
def webhook_bot(settings: Settings, clock: FakeClock, bot_kubeconfig: Path) -> Iterator[Bot]:
    """The bot with its playbook engine (only disable-webhook), acting through the bot's kubeconfig."""
    settings.kubeconfig = str(bot_kubeconfig)
    bot = build_bot(settings, clock=clock, extensions=[])
    handlers_playbooks.install(bot, registry=Registry([disable_webhook.PLAYBOOK]))
    yield bot
    bot.close()


@pytest.fixture
def engine(webhook_bot: Bot) -> Engine:
    return webhook_bot.services.extras["playbook_engine"]


@pytest.fixture
def bot_chat(webhook_bot: Bot) -> MemoryChat:
    return MemoryChat(webhook_bot.dispatcher, workers=webhook_bot.workers)


def test_disable_webhook_lets_writes_through_and_its_rollback_puts_the_saved_object_back(
        bot_chat: MemoryChat, engine: Engine, bot_kube: KubernetesClient,
        admin_kube: KubernetesClient, webhook: dict) -> None:
    admin_kube.create_object(webhook)
    name, hook = webhook["metadata"]["name"], webhook["webhooks"][0]["name"]
    saved = admin_kube.get_object(API_VERSION, KIND, name)
    diagnosed_incident(bot_chat, "alice", title="writes refused")

    plan = bot_chat.say("alice", f"/incident plan disable-webhook webhook={hook}")
    assert f"set failurePolicy of webhook {hook} (calls https://127.0.0.1:" in plan and "from Fail to Ignore" in plan
    bot_chat.say("alice", f"/incident run disable-webhook webhook={hook}")  # RUN-2 (RUN-1: the plan)
    assert bot_chat.say("alice", "/incident approve RUN-2") == "RUN-2 approved by @alice; it starts now."
    run = engine.service.get(2)
    assert run.state == "succeeded", run.error  # dry run, replace, verify with a real write
    assert policies(admin_kube.get_object(API_VERSION, KIND, name)) == {hook: "Ignore"}
    assert bot_kube.write_probe(PROBE_NS).steps  # the bot's own write goes through again

    assert bot_chat.say("alice", "/incident abort RUN-2") == \
        "RUN-2 succeeded earlier; its changes are being removed (undo)."
    restored = admin_kube.get_object(API_VERSION, KIND, name)
    assert engine.service.get(2).state == "rolled_back", (engine.service.get(2).error, [s.error for s in engine.service.steps(2)] if hasattr(engine.service, "steps") else None)
    assert restored["webhooks"] == saved["webhooks"]  # the saved object, failurePolicy Fail again
    with pytest.raises(IntegrationError, match="failed calling webhook"):
        bot_kube.write_probe(PROBE_NS)


def test_bad_input_names_the_field_and_changes_nothing(
        bot_chat: MemoryChat, admin_kube: KubernetesClient, webhook: dict) -> None:
    admin_kube.create_object(webhook)
    diagnosed_incident(bot_chat, "alice", title="writes refused")
    assert "parameter `webhook`: `Not_A_Name` is not a webhook name" in \
        bot_chat.say("alice", "/incident plan disable-webhook webhook=Not_A_Name")
    assert "parameter `webhook`: no webhook named missing.example.com in any webhook configuration." in \
        bot_chat.say("alice", "/incident plan disable-webhook webhook=missing.example.com")
    assert policies(admin_kube.get_object(API_VERSION, KIND, webhook["metadata"]["name"])) == \
        {webhook["webhooks"][0]["name"]: "Fail"}

