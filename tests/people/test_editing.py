"""Editing incidents in chat: severity, title, merging two incidents into one, linking related ones."""

from __future__ import annotations

from starlette.testclient import TestClient

from bot.compose.app.bot import Bot
from bot.compose.app.http import build_http_app
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.store.models import Alert, Incident, TimelineEvent


def counts(bot: Bot) -> tuple[int, int]:
    with bot.db.session() as s:
        return s.query(Incident).count(), s.query(TimelineEvent).count()


def test_the_commander_changes_severity_and_title_and_the_clocks_follow(chat: MemoryChat, clock: FakeClock,
                                                                         bot: Bot) -> None:
    bot.settings.budgets.sev1 = bot.settings.budgets.default.model_copy(update={"diagnose": 120})
    chat.say("alice", "/incident declare etcd slow --severity sev2")
    clock.advance(90)
    assert chat.say("alice", "/incident severity sev1") == "INC-1 is now sev1 (was sev2)."
    assert chat.say("alice", "/incident title etcd quorum lost in eu-west") == \
        "INC-1 is now titled: etcd quorum lost in eu-west"
    status = chat.say("alice", "/incident status")
    assert "etcd quorum lost in eu-west" in status and "Severity      sev1" in status
    assert "30s left to be diagnosed (budget 2m00s)" in status
    timeline = chat.say("alice", "/incident timeline")
    assert "severity sev2 → sev1 by alice" in timeline
    assert "title changed by alice: etcd slow → etcd quorum lost in eu-west" in timeline


def test_bad_edits_name_what_is_wrong_and_change_nothing(chat: MemoryChat, bot: Bot) -> None:
    chat.say("alice", "/incident declare etcd slow --severity sev2")
    before = counts(bot)
    assert chat.say("alice", "/incident severity sev9") == "severity must be one of sev1, sev2, sev3, not `sev9`."
    assert chat.say("alice", "/incident severity sev2") == "INC-1 already is sev2."
    assert chat.say("alice", "/incident title").startswith("`/incident title` needs text.")
    assert chat.say("alice", "/incident merge INC-1") == "INC-1 is the same incident; name another one."
    assert chat.say("alice", "/incident merge prod-1").startswith("`prod-1` is not an incident; write INC-<number>.")
    assert chat.say("alice", "/incident link INC-77") == "there is no incident INC-77."
    assert counts(bot) == before


def test_merging_folds_one_incident_into_the_other(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    chat.say("alice", "/incident declare etcd fsync slow in eu-west-1 --cluster eu-west-1")
    chat.say("alice", "/incident note fsync p99 at 900 ms")
    with bot.db.session() as s:
        s.add(Alert(incident_id=1, fingerprint="f1", alertname="EtcdFsyncSlow", starts_at=clock.now(),
                    received_at=clock.now(), updated_at=clock.now()))
    clock.advance(60)
    chat.say("bob", "/incident declare apiserver latency in eu-west-1 --cluster eu-west-1")
    chat.say("bob", "/incident ack")
    assert chat.say("mallory", "/incident merge INC-1", incident=2) == "only the commander @bob can merge INC-2."
    assert chat.say("bob", "/incident merge INC-1 INC-2") == \
        "INC-2 is merged into INC-1 and closed; carry on in INC-1."
    merged, survivor = bot.services.incidents.get("INC-2"), bot.services.incidents.get("INC-1")
    assert merged.state == "closed" and survivor.state == "notified"
    timeline = chat.say("alice", "/incident timeline INC-1")
    assert "INC-2 (apiserver latency in eu-west-1) merged into this incident by bob" in timeline
    assert "[INC-2] @bob is now commander" in timeline
    assert "merged into INC-1" in chat.say("alice", "/incident timeline INC-2")
    with TestClient(build_http_app(bot)) as client:
        assert client.get("/api/incidents/INC-1").json()["links"] == [{"incident": "INC-2", "relation": "merged from"}]
        assert client.get("/api/incidents/INC-2").json()["links"] == [{"incident": "INC-1", "relation": "merged into"}]
        listed = {i["id"]: i["links"] for i in client.get("/api/incidents?all=1").json()["incidents"]}  # one read for the page
        assert listed == {"INC-1": [{"incident": "INC-2", "relation": "merged from"}],
                          "INC-2": [{"incident": "INC-1", "relation": "merged into"}]}
    assert chat.say("bob", "/incident merge INC-1 INC-2") == "INC-2 is closed; only open incidents can be merged."


def test_merging_moves_the_alerts_and_keeps_the_earlier_t0(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    chat.say("alice", "/incident declare apiserver latency")
    start = clock.now()
    with bot.db.session() as s:
        s.add(Alert(incident_id=1, fingerprint="f1", alertname="ApiLatency", starts_at=start, received_at=start,
                    updated_at=start))
    clock.advance(120)
    chat.say("alice", "/incident declare etcd fsync slow")
    assert chat.say("alice", "/incident merge INC-2", incident=1).startswith("INC-1 is merged into INC-2")
    with bot.db.session() as s:
        assert s.query(Alert).filter(Alert.incident_id == 2).count() == 1
    assert bot.services.incidents.get("INC-2").started_at == start


def test_linking_records_the_relation_in_both_timelines(chat: MemoryChat) -> None:
    chat.say("alice", "/incident declare etcd slow")
    chat.say("alice", "/incident declare DNS errors")
    assert chat.say("alice", "/incident link INC-1") == "INC-2 and INC-1 are linked as related."
    assert "related to INC-2 (DNS errors), linked by alice" in chat.say("alice", "/incident timeline INC-1")
    assert chat.say("alice", "/incident link INC-2 INC-1") == "INC-1 and INC-2 are already linked."
