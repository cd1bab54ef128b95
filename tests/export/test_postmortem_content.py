"""What reviewers read the next morning: summary, 1-5-10 verdicts, timeline, runs, action items.

Each incident is built through the chat (MemoryChat on a FakeClock), then
exported; the assertions are on what a reader sees in the document.
"""

from __future__ import annotations

import json

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.domain.export import export_incident
from tests.export import scenarios


def export(bot: Bot, fmt: str = "md", ref: str = "INC-1", **kw: object) -> str:
    return export_incident(bot.db, bot.settings, ref, fmt=fmt, **kw).content  # type: ignore[arg-type]


def doc(bot: Bot, ref: str = "INC-1") -> dict:
    return json.loads(export(bot, "json", ref))


def verdicts(bot: Bot, ref: str = "INC-1") -> dict[str, str]:
    return {s["stage"]: s["verdict"] for s in doc(bot, ref)["slo"]["stages"]}


def test_all_three_stages_met(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    scenarios.all_met(chat, clock)
    assert verdicts(bot) == {"notify": "met", "diagnose": "met", "mitigate": "met"}
    md = export(bot)
    assert md.startswith("# INC-1 post-mortem: apiserver 5xx in prod-1\n")
    for line in ("| Severity | sev1 |", "| Cluster | prod-1 |", "| Commander | @alice |", "| Scribe | @dave |",
                 "| Responders | @erin |", "| Root cause | a CI robot lists all pods every second |",
                 "| Mitigation | throttled ci-robots with APF |",
                 "| Discover & announce (notified) | 1m00s | 2026-11-25 03:00:00 | 0s | ✅ met |",
                 "| Locate the root cause (diagnosed) | 5m00s | 2026-11-25 03:03:00 | 3m00s | ✅ met |",
                 "| Recover (mitigated) | 10m00s | 2026-11-25 03:08:00 | 8m00s | ✅ met |",
                 "**3 met, 0 breached, 0 never reached.**"):
        assert line in md, line
    # the timeline: who, what, when, source, evidence
    assert ("| 2026-11-25 03:01:00 | T+1:00 | dave | chat:memory | note | LIST pods p99 at 40s |" in md)
    assert "| alice | chat:memory | state.changed | diagnosed → mitigated by alice: throttled ci-robots with APF | " \
           "`from=diagnosed; to=mitigated; reason=throttled ci-robots with APF; trigger=mark_mitigated` |" in md
    # action items, one done
    assert ("- [x] #1 add an APF schema for CI robots — p2, owner nobody yet; added by @alice 2026-11-25 03:08:00; "
            "done by @alice") in md
    assert "- [ ] #2 alert on LIST latency per user — p2, owner nobody yet; added by @alice 2026-11-25 03:08:00" in md


def test_breached_stages_say_by_how_much(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    scenarios.breached(chat, clock)
    assert verdicts(bot) == {"notify": "met", "diagnose": "breached", "mitigate": "breached"}
    stages = {s["stage"]: s for s in doc(bot)["slo"]["stages"]}
    assert stages["diagnose"]["elapsed_seconds"] == 420 and stages["diagnose"]["breached_by_seconds"] == 120
    assert stages["mitigate"]["elapsed_seconds"] == 720 and stages["mitigate"]["breached_by_seconds"] == 120
    md = export(bot)
    assert "| Locate the root cause (diagnosed) | 5m00s | 2026-11-25 03:07:00 | 7m00s | ❌ breached by 2m00s |" in md
    assert "| Recover (mitigated) | 10m00s | 2026-11-25 03:12:00 | 12m00s | ❌ breached by 2m00s |" in md
    assert "**1 met, 2 breached, 0 never reached.**" in md
    # the watcher's own warning, breach and escalation are on the timeline with their evidence
    assert "| watcher | watcher | slo.warning |" in md
    assert "| watcher | watcher | slo.breach | breach: not diagnosed after 7m00s (budget 5m00s): breached by 2m00s |" in md
    assert "| escalation.paged | escalated to @" in md


def test_a_cancelled_incident_never_reached_the_later_stages(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    scenarios.cancelled(chat, clock)
    assert verdicts(bot) == {"notify": "met", "diagnose": "never-reached", "mitigate": "never-reached"}
    d = doc(bot)
    assert d["incident"]["state"] == "cancelled"
    assert d["slo"]["stages"][1]["stopped_after_seconds"] == 120
    md = export(bot)
    assert "| Cancelled | 2026-11-25 03:02:00 |" in md
    assert "| Locate the root cause (diagnosed) | 5m00s | — | not reached after 2m00s | ⚪ never reached |" in md
    assert "notified → cancelled by carol: synthetic probe misconfigured" in md
    assert "No playbook was run." in md and "No action items yet." in md


def test_a_failed_then_successful_mitigation_shows_both_runs(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    scenarios.failed_then_successful_mitigation(bot, chat, clock)
    d = doc(bot)
    assert [(r["ref"], r["state"]) for r in d["runs"]] == [("RUN-1", "failed"), ("RUN-2", "succeeded")]
    first, second = d["runs"]
    assert first["plan_text"] == "+ FlowSchema ci-robot-throttle -> PriorityLevel ci-robot (shares 5)"
    assert first["plan"] == {"changes": [{"kind": "FlowSchema", "name": "ci-robot-throttle", "op": "create"}]}
    assert [(a["user"], a["plan_hash"], a["matches_plan"]) for a in first["approvals"]] == [("alice", "sha256:1111", True)]
    assert [(s["phase"], s["name"], s["state"]) for s in first["steps"]] == [
        ("execute", "create FlowSchema ci-robot-throttle", "succeeded"),
        ("verify", "LIST latency below 5s", "failed"),
        ("rollback", "delete FlowSchema ci-robot-throttle", "succeeded"),
    ]
    assert first["steps"][1]["error"] == "p99 still 38.5s after 3 checks"
    assert first["error"] == "verification failed; rolled back"
    assert second["approvals"][0]["plan_hash"] == "sha256:2222"
    assert d["incident"]["mitigation"] == "playbook apf-throttle (RUN-2) succeeded"
    kinds = [e["kind"] for e in d["timeline"] if e["id"] in first["event_ids"]]
    assert kinds == ["run.planned", "run.approved", "run.failed"]
    # the way back: mitigating -> diagnosed, then mitigating -> mitigated
    changes = [e["text"] for e in d["timeline"] if e["kind"] == "state.changed"]
    assert "mitigating → diagnosed by engine: RUN-1 failed" in changes
    assert "mitigating → mitigated by engine: RUN-2 verified" in changes
    assert [s["verdict"] for s in d["slo"]["stages"]] == ["met", "met", "met"]
    # alerts and diagnosis checks
    assert [a["alertname"] for a in d["alerts"]] == ["KubeAPIErrorBudgetBurn"]
    assert [e["kind"] for e in d["diagnosis"]] == ["diagnosis.check", "diagnosis.conclusion"]
    assert d["diagnosis"][0]["data"]["value"] == 41.0
    md = export(bot)
    for text in ("### RUN-1: apf-throttle — failed", "### RUN-2: apf-throttle — succeeded", "Plan (hash `sha256:1111`):",
                 "```text\n+ FlowSchema ci-robot-throttle -> PriorityLevel ci-robot (shares 5)\n```",
                 "| approve | @alice | 2026-11-25 03:01:00 | `sha256:1111` | yes | — |",
                 "| 1 | verify | LIST latency below 5s | failed | 2026-11-25 03:01:05 | 15s | 3 | "
                 "p99 still 38.5s after 3 checks `p99_seconds=38.5` |",
                 "Error: verification failed; rolled back",
                 "| [KubeAPIErrorBudgetBurn](<http://prometheus.invalid/graph?g0.expr=apiserver>) | firing | critical "
                 "| 2026-11-25 02:59:40 | — |",
                 "`diagnosis.check` by diagnosis (diagnosis): apiserver LIST latency p99 = 41s (threshold 5s)"):
        assert text in md, text
    html = export(bot, "html")
    assert "RUN-1: apf-throttle" in html and "p99 still 38.5s after 3 checks" in html


def test_text_from_chat_cannot_break_the_markdown_tables(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    chat.say("alice", "/incident declare pipes | and <b>tags</b> in a title")
    chat.say("alice", "/incident note a | b `code` <script>x</script>")
    md = export(bot)
    assert "# INC-1 post-mortem: pipes \\| and &lt;b&gt;tags&lt;/b&gt; in a title" in md
    assert "| note | a \\| b `code` &lt;script&gt;x&lt;/script&gt; |" in md
    html = export(bot, "html")
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_an_open_incident_is_judged_as_of_its_last_fact(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    chat.say("alice", "/incident declare etcd slow")
    clock.advance(90)
    chat.say("alice", "/incident note still looking")
    clock.advance(3600)  # nothing recorded since: the export does not depend on when it is made
    d = doc(bot)
    assert d["export"]["as_of"] == "2026-11-25T03:01:30+00:00" and d["export"]["generated_at"] is None
    assert [s["verdict"] for s in d["slo"]["stages"]] == ["met", "never-reached", "never-reached"]
