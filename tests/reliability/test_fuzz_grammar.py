"""Property-based fuzzing of the chat grammar: any line, from anyone, gets a sentence back.

Lines are built from the grammar's own verbs and options (``bot.chat.grammar.VERBS``)
with arguments drawn from odd text, mentions, references and ``k=v`` pairs, so
the parser and every handler behind it are reached.  A reply may refuse; it
may never be the "failed inside the bot" apology (that is a bug) or empty.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from bot.compose.app.bot import Bot
from bot.chat.dispatcher import ChatContext
from bot.chat.grammar import VERBS
from tests.reliability.schema_strategies import ODD_TEXT

TOKENS = st.one_of(
    ODD_TEXT.filter(lambda t: "\n" not in t),
    st.sampled_from(["INC-1", "INC-2", "RUN-1", "<@U0ALICE>", "@bob", "--severity", "sev1", "sev9", "--format",
                     "json", "--plan", "ffffffffffff", "--all", "--since", "7d", "--tz", "Mars/Olympus",
                     "path=/tmp/x", "=", "k=", "'", '"', "--", "-", "p1", "due", "2026-02-30"]),
)
LINES = st.one_of(
    st.tuples(st.sampled_from([v.name for v in VERBS] + ["", "frobnicate"]), st.lists(TOKENS, max_size=6)).map(
        lambda parts: " ".join(["/incident", parts[0], *parts[1]])),
    ODD_TEXT,
)
USERS = st.sampled_from(["alice", "bob", "carol", "dave", "mallory"])


def test_any_line_from_anyone_gets_a_sentence_not_a_failure(bot: Bot) -> None:
    bot.services.incidents.declare("a known incident", actor="alice")
    replies = []

    @settings(max_examples=300, deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(USERS, LINES, st.sampled_from([None, 1, 2, 10**12]))
    def one(user: str, line: str, incident: int | None) -> None:
        reply = bot.dispatcher.handle(ChatContext(user=user, adapter="memory", incident_id=incident), line)
        text = reply.text or ""
        assert text.strip(), f"empty reply to {line!r}"
        assert "failed inside the bot" not in text, f"{line!r} from {user} -> {text}"
        replies.append(reply)

    one()
    assert len(replies) >= 300
