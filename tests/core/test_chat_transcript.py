"""Chat transcripts: the verbs of the grammar as people use them, and bad lines."""

from __future__ import annotations

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.store.models import Incident, TimelineEvent


def counts(bot: Bot) -> tuple[int, int]:
    with bot.db.session() as s:
        return s.query(Incident).count(), s.query(TimelineEvent).count()


def test_an_incident_from_declaration_to_resolution(chat: MemoryChat, bot: Bot) -> None:
    assert chat.say("alice", "/incident declare apiserver 5xx in prod-1 --severity sev1 --cluster prod-1") == \
        "Declared INC-1: apiserver 5xx in prod-1 (sev1, cluster prod-1)."
    assert chat.say("alice", "/incident ack") == "@alice is now commander of INC-1."
    assert chat.say("alice", "/incident assign scribe @dave") == "@dave is now scribe of INC-1."
    assert chat.say("dave", "/incident note LIST pods p99 at 40s") == "Noted on INC-1."
    assert chat.say("dave", "/incident cause a CI robot lists all pods every second") == \
        "INC-1 is diagnosed: a CI robot lists all pods every second"
    assert chat.say("alice", "/incident mitigated throttled ci-robots with APF") == "INC-1 is mitigated."
    assert chat.say("alice", "/incident action add APF schema for CI robots") == "Action item #1 added to INC-1."
    assert chat.say("alice", "/incident resolve") == "INC-1 is resolved."
    status = chat.say("alice", "/incident status")
    assert "State         resolved" in status
    assert "✓ notified in 0s (budget 1m00s): met" in status
    assert "Root cause: a CI robot lists all pods every second" in status
    timeline = chat.say("bob", "/incident timeline INC-1")
    for expected in ("opened by alice", "@alice is now commander", "LIST pods p99 at 40s", "root cause:",
                     "diagnosed → mitigated by alice", "mitigated → resolved by alice"):
        assert expected in timeline


def test_the_declaration_pages_the_on_call_and_announces(chat: MemoryChat, bot: Bot) -> None:
    chat.say("carol", "/incident declare etcd quorum lost")
    delivered = chat.deliverer.delivered
    assert [m.kind for m in delivered][:2] == ["incident.card", "page"]
    assert delivered[1].payload["user"] == "alice"  # primary of the rota this week
    incident = bot.services.incidents.get("INC-1")
    assert incident.state == "notified" and incident.notified_at == bot.clock.now()


def test_only_the_commander_can_resolve(chat: MemoryChat) -> None:
    chat.say("alice", "/incident declare etcd slow")
    chat.say("alice", "/incident ack")
    chat.say("alice", "/incident cause disk")
    assert chat.say("mallory", "/incident cancel") == "only the commander @alice can `cancel` INC-1."
    assert chat.say("bob", "/incident ack") == (
        "INC-1 already has a commander, @alice; they can hand over with `/incident assign commander @bob`.")
    assert chat.say("alice", "/incident assign commander @bob") == "@bob is now commander of INC-1."
    assert chat.say("bob", "/incident mitigated") == "INC-1 is mitigated."


def test_bad_lines_get_one_line_and_change_nothing(chat: MemoryChat, bot: Bot) -> None:
    chat.say("alice", "/incident declare etcd slow")
    chat.say("alice", "/incident resolve")
    before = counts(bot)
    answers = {
        "/incident frobnicate": "unknown command `frobnicate`. Try `/incident help`. Usage: /incident help [VERB]",
        "/incident declare": "`/incident declare` needs title. Usage: /incident declare <title> "
                             "[--severity sev1|sev2|sev3] [--cluster NAME]",
        "/incident declare x --severity sev9": "`--severity` must be one of sev1, sev2, sev3, not `sev9`. Usage: "
                                               "/incident declare <title> [--severity sev1|sev2|sev3] [--cluster NAME]",
        "/incident cancel": "INC-1 is resolved, so `cancel` is not possible now. Possible now: `close`, `reopen`.",
        "/incident note hello INC-99": "there is no incident INC-99.",
        "/incident assign boss @bob": "role must be one of commander, scribe, responder, not `boss`.",
        "/incident diagnose": "INC-1 is resolved, so `diagnose` is not possible now. Possible now: `close`, `reopen`.",
    }
    for line, answer in answers.items():
        reply = chat.say("alice", line)
        assert reply == answer
        assert "\n" not in reply and "Traceback" not in reply
    assert counts(bot) == before


def test_a_bug_inside_a_handler_is_an_apology_not_a_traceback(chat: MemoryChat) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("boom")

    chat.dispatcher.handlers["list"] = broken  # type: ignore[assignment]
    answer = chat.say("alice", "/incident list")
    assert answer.startswith("Sorry, that failed inside the bot; nothing was changed by it.")
    assert "boom" not in answer


def test_help_is_generated_from_the_grammar(chat: MemoryChat) -> None:
    everything = chat.say("alice", "/incident help")
    for verb in ("declare", "ack", "assign", "approve", "freeze", "export"):
        assert verb in everything
    assert "• /incident assign <role> <@user> [INC]" in chat.say("alice", "/incident help assign")


def test_action_items_can_be_marked_done(chat: MemoryChat, bot: Bot) -> None:
    chat.say("alice", "/incident declare etcd slow")
    chat.say("alice", "/incident action add fsync alert")
    assert chat.say("alice", "/incident action done 1") == "Action item #1 is done."
    assert chat.say("alice", "/incident action done 1") == "action item #1 is already done."
    assert [a.done for a in bot.services.incidents.actions("INC-1")] == [True]
