"""A failed then successful mitigation driven through the real playbook engine, as the post-mortem shows it.

The engine's test playbook (tests/playbooks/file_playbook.py) writes lines to
a file; ``fail_at`` makes a step fail so the run rolls back.  Everything is
done in chat: run, approve, run again, approve.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.compose.app.bot import Bot, build_bot
from bot.chat import handlers_playbooks
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.config import Settings
from bot.domain.export import export_incident
from tests.playbooks.file_playbook import arm_hung_steps, release_hung_steps
from tests.playbooks.file_playbook import registry_for_tests as make_registry


@pytest.fixture
def engine_bot(settings: Settings, clock: FakeClock) -> Iterator[Bot]:
    arm_hung_steps()
    b = build_bot(settings, clock=clock, extensions=["bot.compose.app.export"])
    handlers_playbooks.install(b, registry=make_registry())
    yield b
    release_hung_steps()
    b.close()


def test_the_engines_runs_plans_approvals_and_steps_are_in_the_post_mortem(
        engine_bot: Bot, clock: FakeClock, tmp_path: Path, schema_validator) -> None:  # type: ignore[no-untyped-def]
    chat = MemoryChat(engine_bot.dispatcher, workers=engine_bot.workers)
    target = tmp_path / "changes.txt"
    chat.say("alice", "/incident declare apiserver overloaded --severity sev1")
    chat.say("alice", "/incident ack")
    clock.advance(60)
    chat.say("alice", "/incident cause one client floods the apiserver")
    clock.advance(30)
    chat.say("alice", f"/incident run write-file path={target} fail_at=2")
    clock.advance(15)
    chat.say("alice", "/incident approve RUN-1")
    clock.advance(60)
    chat.say("alice", f"/incident run write-file path={target} tag=second")
    clock.advance(15)
    chat.say("alice", "/incident approve RUN-2")
    clock.advance(30)
    chat.say("alice", "/incident resolve")

    content = export_incident(engine_bot.db, engine_bot.settings, "INC-1", fmt="json").content
    doc = json.loads(content)
    assert not list(schema_validator.iter_errors(doc))
    first, second = doc["runs"]
    assert (first["state"], second["state"]) == ("rolled_back", "succeeded")
    assert first["error"] == "step write line 2 failed: injected failure at step 2"
    assert first["plan_hash"] and first["plan_hash"] != second["plan_hash"]
    assert f"append run:step-0 to {target}" in first["plan_text"]
    assert [(a["user"], a["matches_plan"]) for a in first["approvals"] if a["decision"] == "approve"] == [("alice", True)]
    assert [(s["phase"], s["name"], s["state"]) for s in first["steps"] if s["phase"] == "execute"][:2] == [
        ("execute", "write line 0", first["steps"][0]["state"]),
        ("execute", "write line 1", first["steps"][1]["state"]),
    ]
    assert any(s["state"] == "failed" for s in first["steps"])
    run_kinds = [e["kind"] for e in doc["timeline"] if e["id"] in first["event_ids"]]
    assert "run.approved" in run_kinds and "run.rolling_back" in run_kinds and "run.rolled_back" in run_kinds
    assert "run.succeeded" in [e["kind"] for e in doc["timeline"] if e["id"] in second["event_ids"]]
    assert [s["verdict"] for s in doc["slo"]["stages"]] == ["met", "met", "met"]

    md = export_incident(engine_bot.db, engine_bot.settings, "INC-1", fmt="md").content
    assert "### RUN-1: write-file — rolled_back" in md and "### RUN-2: write-file — succeeded" in md
    assert f"Plan (hash `{first['plan_hash']}`):" in md
    assert "Error: step write line 2 failed: injected failure at step 2" in md
