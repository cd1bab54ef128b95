"""Declarations: parameters typed and named in errors, plans hashed canonically, docs from the declaration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.errors import BadInput
from playbooks.engine import Param, Plan, PlanContext, Playbook, Step
from playbooks.engine.params import parse_params
from playbooks.engine.planning import compute, plan_hash
from playbooks.library.apf_manifests import semantic_problems

REPO = Path(__file__).resolve().parents[2]
PARAMS = (Param("name", "who"), Param("count", "how many", type="int", default=2, minimum=1, maximum=5),
          Param("wait", "how long", type="duration", default=60.0, minimum=10),
          Param("mode", "how", default="soft", choices=("soft", "hard")),
          Param("dry", "only pretend", type="bool", default=False))


def test_parameters_are_typed_with_defaults() -> None:
    assert parse_params(PARAMS, {"name": "x", "count": "3", "wait": "2m", "dry": "yes"}) == {
        "name": "x", "count": 3, "wait": 120.0, "mode": "soft", "dry": True}


@pytest.mark.parametrize(("given", "field", "message"), [
    ({}, "name", "parameter `name` is required (who)."),
    ({"name": "x", "count": "9"}, "count", "parameter `count`: expected a whole number (at least 1, at most 5), not `9`."),
    ({"name": "x", "wait": "5s"}, "wait", "parameter `wait`: expected a duration like 90s, 15m or 2h (at least 10s), "
                                          "not `5s`."),
    ({"name": "x", "mode": "wild"}, "mode", "parameter `mode`: expected one of soft, hard, not `wild`."),
    ({"name": "x", "dry": "maybe"}, "dry", "parameter `dry`: expected true or false, not `maybe`."),
    ({"name": "x", "colour": "red"}, "colour", "unknown parameter `colour`; this playbook takes: name, count, wait, "
                                               "mode, dry."),
])
def test_bad_parameters_name_the_parameter(given: dict, field: str, message: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_params(PARAMS, given)
    assert err.value.field == field and err.value.message == message


def test_diagnosis_evidence_fills_missing_parameters() -> None:
    params = (Param("subject", "who", from_diagnosis=("user",)),)
    assert parse_params(params, {}, {"user": "bob"}) == {"subject": "bob"}
    assert parse_params(params, {"subject": "carol"}, {"user": "bob"}) == {"subject": "carol"}


def test_the_plan_hash_is_canonical_json() -> None:
    assert plan_hash({"a": 1, "b": [1, 2]}) == plan_hash({"b": [1, 2], "a": 1})
    assert plan_hash({"a": 1}) != plan_hash({"a": 2})


def test_the_blast_radius_is_checked_in_the_plan() -> None:
    wide = Playbook("wide", "touches too much", "low", (Param("n", "objects", type="int"),),
                    plan=lambda ctx: Plan(changes=[{"i": i} for i in range(ctx.params["n"])], lines=["x"],
                                          impact={"objects": ctx.params["n"]}),
                    steps=(Step("s", do=lambda ctx: None),), blast_radius={"objects": 3})
    assert compute(wide, PlanContext(wide, {"n": 3}, "c1", None)).hash
    with pytest.raises(BadInput, match="the plan touches 5 objects; wide allows at most 3. Narrow the parameters."):
        compute(wide, PlanContext(wide, {"n": 5}, "c1", None))


def test_declarations_refuse_mistakes() -> None:
    with pytest.raises(ValueError, match="risk must be one of"):
        Playbook("x", "x", "medium", (), plan=lambda c: Plan([], []), steps=(Step("s", do=lambda c: None),))
    with pytest.raises(ValueError, match="declares no steps"):
        Playbook("x", "x", "low", (), plan=lambda c: Plan([], []), steps=())


@pytest.mark.parametrize(("manifest", "problem"), [
    ({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
      "spec": {"priorityLevelConfiguration": {"name": "p"}, "matchingPrecedence": 2}}, "spec.matchingPrecedence"),
    ({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
      "spec": {"priorityLevelConfiguration": {"name": "p"}, "matchingPrecedence": 50,
               "distinguisherMethod": {"type": "ByIP"}}}, "spec.distinguisherMethod.type"),
    ({"apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3", "kind": "PriorityLevelConfiguration",
      "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 0}}}, "spec.limited.nominalConcurrencyShares"),
    ({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
      "spec": {"type": "Limited", "limited": {"limitResponse": {"type": "Queue", "queuing": {
          "queues": 2, "handSize": 3, "queueLengthLimit": 5}}}}}, "spec.limited.limitResponse.queuing.handSize"),
])
def test_semantic_checks_catch_what_the_schema_misses(manifest: dict, problem: str) -> None:
    assert [p for p, _ in semantic_problems(manifest)] == [problem]


def test_cli_lists_and_documents_playbooks_from_their_declarations() -> None:
    listing = subprocess.run([sys.executable, "-m", "bot.compose.cli.main", "playbooks", "list"], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert any(line.startswith("throttle-client  ") and " high " in line for line in listing.stdout.splitlines())
    show = subprocess.run([sys.executable, "-m", "bot.compose.cli.main", "playbooks", "show", "throttle-client"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert show.returncode == 0, show.stderr
    assert "  subject (text; required) — the client to throttle; from diagnosis: subject, client, user" in show.stdout
    assert "rollback order: undo create flow schema → undo create priority level" in show.stdout
    missing = subprocess.run([sys.executable, "-m", "bot.compose.cli.main", "playbooks", "show", "nope"], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "there is no playbook `nope`" in missing.stderr


def test_the_shipped_bot_wires_the_engine(settings, clock) -> None:  # type: ignore[no-untyped-def]
    from bot.compose.app.bot import build_bot

    bot = build_bot(settings, clock=clock)
    try:
        service = bot.services.extras["playbooks"]
        assert "throttle-client" in service.registry
        assert any(getattr(w, "name", None) == "playbooks" for w in bot.workers)
        assert {"plan", "run", "approve", "reject", "abort", "freeze", "unfreeze"} <= set(bot.dispatcher.handlers)
    finally:
        bot.close()
