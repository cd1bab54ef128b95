"""Pages through PagerDuty (Events API v2) and Opsgenie (Alert API); acknowledgements come back by webhook."""

from __future__ import annotations

import hmac
import json

from pydantic import SecretStr
from starlette.testclient import TestClient

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.store.models import Incident, TimelineEvent
from tests.paging.conftest import OG_TOKEN, sender
from tests.support.fake_pagers import FakeOpsgenie, FakePagerDuty


def facts(bot: Bot) -> tuple[object, object, int]:
    with bot.db.session() as s:
        row = s.get(Incident, 1)
        events = s.query(TimelineEvent).count()
        return row.acknowledged_at, row.acknowledged_by, events  # type: ignore[union-attr]


def test_a_declaration_triggers_pagerduty_and_opsgenie_and_that_delivery_is_the_notification(
        bot: Bot, chat: MemoryChat, fake_pd: FakePagerDuty, fake_og: FakeOpsgenie, clock: FakeClock) -> None:
    chat.deliverer.refuse = True  # Slack is down: the pagers alone must reach the on-call
    chat.say("carol", "/incident declare etcd quorum lost --severity sev1 --cluster prod-eu-1")
    pd = fake_pd.incidents["INC-1"]
    assert (pd["status"], pd["severity"], pd["title"]) == ("triggered", "critical", "INC-1 etcd quorum lost (sev1)")
    trigger = pd["log"][0]
    assert trigger["dedup_key"] == "INC-1" and trigger["payload"]["group"] == "prod-eu-1"
    assert trigger["payload"]["custom_details"]["paged"] == "alice"
    og = fake_og.alerts["INC-1"]
    assert (og["status"], og["priority"], og["responders"]) == ("open", "P1", ["alice@example.com"])
    incident = bot.services.incidents.get("INC-1")
    assert incident.state == "notified" and incident.notified_at == clock.now()


def test_a_pagerduty_acknowledgement_stamps_the_incident_and_shows_beside_notified(
        bot: Bot, chat: MemoryChat, client: TestClient, fake_pd: FakePagerDuty, clock: FakeClock) -> None:
    chat.say("carol", "/incident declare etcd quorum lost --severity sev1")
    clock.advance(65)
    body, headers = fake_pd.acknowledgement("INC-1", by="Alice Example")
    answer = client.post("/webhooks/pagerduty", content=body, headers=headers)
    assert answer.status_code == 200 and answer.json() == {"incident": "INC-1", "acknowledged": True}
    assert "Acknowledged  @Alice Example, 1m05s after notified" in chat.say("carol", "/incident status")
    assert "page acknowledged by @Alice Example via pagerduty, 1m05s after the notification" in \
        chat.say("carol", "/incident timeline")
    api = client.get("/api/incidents/INC-1").json()
    assert (api["acknowledged_by"], api["time_to_acknowledge_seconds"]) == ("Alice Example", 65.0)
    again = client.post("/webhooks/pagerduty", content=body, headers=headers)
    assert again.json() == {"incident": "INC-1", "acknowledged": False}, "the first acknowledgement is the fact"


def test_pagerduty_webhooks_with_a_bad_signature_or_payload_change_nothing(
        bot: Bot, chat: MemoryChat, client: TestClient, fake_pd: FakePagerDuty) -> None:
    chat.say("carol", "/incident declare etcd quorum lost")
    before = facts(bot)
    body, headers = fake_pd.acknowledgement("INC-1", secret="not-the-secret")
    forged = client.post("/webhooks/pagerduty", content=body, headers=headers)
    assert forged.status_code == 401 and "X-PagerDuty-Signature" in forged.json()["error"]
    unsigned = client.post("/webhooks/pagerduty", content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    bad = b'{"event": {"event_type": "incident.acknowledged"}}'
    signed = {"X-PagerDuty-Signature": "v1=" + hmac.new(fake_pd.webhook_secret.encode(), bad, "sha256").hexdigest()}
    malformed = client.post("/webhooks/pagerduty", content=bad, headers=signed)
    assert malformed.status_code == 400 and "event.id: expected a string" in malformed.json()["error"]
    assert facts(bot) == before


def test_a_rotated_pagerduty_secret_is_accepted_while_both_are_configured(
        bot: Bot, chat: MemoryChat, client: TestClient, fake_pd: FakePagerDuty) -> None:
    chat.say("carol", "/incident declare etcd quorum lost")
    bot.settings.paging.pagerduty.webhook_secrets = [SecretStr("old-secret"), SecretStr("new-secret")]
    body, headers = fake_pd.acknowledgement("INC-1", secret="new-secret")
    assert client.post("/webhooks/pagerduty", content=body, headers=headers).json()["acknowledged"] is True


def test_other_pagerduty_events_and_foreign_incidents_are_taken_and_ignored(
        bot: Bot, chat: MemoryChat, client: TestClient, fake_pd: FakePagerDuty) -> None:
    chat.say("carol", "/incident declare etcd quorum lost")
    body, headers = fake_pd.acknowledgement("INC-1")
    event = json.loads(body)
    event["event"]["event_type"] = "incident.annotated"
    event["event"]["data"]["incident_key"] = "INC-1"
    for changed in (event, {**event, "event": {**event["event"], "event_type": "incident.acknowledged",
                                               "data": {"incident_key": "someone-elses-key"}}}):
        raw = json.dumps(changed).encode()
        sig = "v1=" + hmac.new(fake_pd.webhook_secret.encode(), raw, "sha256").hexdigest()
        answer = client.post("/webhooks/pagerduty", content=raw, headers={"X-PagerDuty-Signature": sig})
        assert answer.status_code == 200 and "ignored" in answer.json()
    assert facts(bot)[0] is None


def test_an_opsgenie_acknowledgement_names_the_person_by_their_e_mail(
        bot: Bot, chat: MemoryChat, client: TestClient, fake_og: FakeOpsgenie, clock: FakeClock) -> None:
    chat.say("carol", "/incident declare apiserver 5xx --severity sev2")
    assert fake_og.alerts["INC-1"]["priority"] == "P2"
    clock.advance(30)
    body, headers = fake_og.acknowledgement("INC-1", username="bob@example.com", token="wrong")
    refused = client.post("/webhooks/opsgenie", content=body, headers=headers)
    assert refused.status_code == 401 and facts(bot)[0] is None
    body, headers = fake_og.acknowledgement("INC-1", username="bob@example.com", token=OG_TOKEN)
    assert client.post("/webhooks/opsgenie", content=body, headers=headers).json() == \
        {"incident": "INC-1", "acknowledged": True}
    assert "Acknowledged  @bob, 30s after notified" in chat.say("carol", "/incident status")
    not_json = client.post("/webhooks/opsgenie", content=b"{", headers={"Authorization": f"Bearer {OG_TOKEN}"})
    assert not_json.status_code == 400 and "(body)" in not_json.json()["error"]


def test_resolving_the_incident_resolves_the_pagerduty_incident_and_closes_the_opsgenie_alert(
        chat: MemoryChat, fake_pd: FakePagerDuty, fake_og: FakeOpsgenie) -> None:
    chat.say("alice", "/incident declare etcd slow")
    chat.say("alice", "/incident ack")
    assert chat.say("alice", "/incident resolve") == "INC-1 is resolved."
    assert fake_pd.incidents["INC-1"]["status"] == "resolved"
    assert fake_pd.incidents["INC-1"]["log"][-1] == {"routing_key": fake_pd.routing_key, "event_action": "resolve",
                                                     "dedup_key": "INC-1"}
    assert fake_og.alerts["INC-1"]["status"] == "closed"


def test_a_throttled_pager_is_tried_again_after_its_retry_after(
        bot: Bot, chat: MemoryChat, fake_pd: FakePagerDuty, clock: FakeClock) -> None:
    fake_pd.fail(429, retry_after=20)
    chat.say("carol", "/incident declare etcd quorum lost")
    assert "INC-1" not in fake_pd.incidents
    fake_pd.heal()
    clock.advance(10)
    assert sender(bot, "pagerduty").tick() == 0, "not before Retry-After"
    clock.advance(11)
    assert sender(bot, "pagerduty").tick() == 1
    assert fake_pd.incidents["INC-1"]["status"] == "triggered"


def test_chat_ack_is_an_acknowledgement_too(bot: Bot, chat: MemoryChat, clock: FakeClock) -> None:
    chat.say("carol", "/incident declare etcd quorum lost")
    clock.advance(42)
    assert chat.say("alice", "/incident ack") == "@alice is now commander of INC-1."
    assert "Acknowledged  @alice, 42s after notified" in chat.say("alice", "/incident status")


def test_an_incident_merged_away_resolves_its_pagerduty_incident_and_closes_its_opsgenie_alert(
        chat: MemoryChat, fake_pd: FakePagerDuty, fake_og: FakeOpsgenie) -> None:
    chat.say("alice", "/incident declare etcd slow in eu-west")
    chat.say("bob", "/incident declare apiserver latency in eu-west")
    assert {k: v["status"] for k, v in fake_pd.incidents.items()} == {"INC-1": "triggered", "INC-2": "triggered"}
    assert chat.say("alice", "/incident merge INC-1 INC-2").startswith("INC-2 is merged into INC-1")
    assert {k: v["status"] for k, v in fake_pd.incidents.items()} == {"INC-1": "triggered", "INC-2": "resolved"}
    assert fake_pd.incidents["INC-2"]["log"][-1]["event_action"] == "resolve"
    assert {k: v["status"] for k, v in fake_og.alerts.items()} == {"INC-1": "open", "INC-2": "closed"}
