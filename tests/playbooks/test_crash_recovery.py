"""Kill the engine's process (SIGKILL) at every boundary of a run, restart it, and check nothing was lost or repeated.

Each test first runs the playbook once in this process to learn the
boundaries it passes (the engine's hooks), then runs it again in a chain of
real processes on a SQLite file: process k kills itself at boundary k, process
k+1 starts, finds the run ``running`` with a stale heartbeat, resumes it at
its checkpoint and dies at boundary k+1 ... the last one finishes it.  The
run must complete exactly once (each file line written once, each APF object
created once) and the timeline must hold every event of the undisturbed run
exactly once (plus one ``run.resumed`` note per restart).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bot.compose.app.bot import build_bot
from bot.chat import handlers_playbooks
from bot.core.clock import SystemClock
from bot.core.store.models import PlaybookRun
from tests.conftest import make_settings
from tests.playbooks.file_playbook import registry_for_tests
from tests.support.apiserver import ApiServerStandIn

REPO = Path(__file__).resolve().parents[2]


def prepare(db_url: str, playbook: str, params: dict[str, Any], *, kubeconfig: str | None = None,
            labels: list[str] | None = None, execute: bool = False) -> tuple[int, int]:
    """An incident with a commander and a cause, and an approved run; optionally execute it here."""
    settings = make_settings(db_url)
    settings.kubeconfig = kubeconfig
    bot = build_bot(settings, clock=SystemClock(), extensions=[])
    try:
        engine = handlers_playbooks.install(bot, registry=registry_for_tests())
        incidents = bot.services.incidents
        row = incidents.declare("apiserver overloaded", actor="alice")
        incidents.ack(row.id, actor="alice")
        incidents.cause(row.id, "a client floods the apiserver", actor="alice")
        run = engine.service.propose(row.id, playbook, params, requested_by="bob", source="chat")
        engine.service.approve(run.id, user="alice")
        if execute:
            if labels is not None:
                engine.executor.hooks.append(lambda label, _run: labels.append(label))
            engine.worker.tick()
        return row.id, run.id  # type: ignore[return-value]
    finally:
        bot.close()


def engine_process(db_url: str, run_id: int, *, kill_at: str | None = None,
                   kubeconfig: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "tests.playbooks.crash_runner", db_url, str(run_id)]
    if kill_at:
        cmd += ["--kill-at", kill_at]
    if kubeconfig:
        cmd += ["--kubeconfig", kubeconfig]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


def crash_at_every_boundary(db_url: str, run_id: int, boundaries: list[str], *, kubeconfig: str | None = None) -> str:
    for label in boundaries:
        proc = engine_process(db_url, run_id, kill_at=label, kubeconfig=kubeconfig)
        assert proc.returncode == -9, f"the process did not die at {label}: rc={proc.returncode} {proc.stderr[-2000:]}"
    final = engine_process(db_url, run_id, kubeconfig=kubeconfig)
    assert final.returncode == 0, final.stderr[-3000:]
    return final.stdout.strip()


def timeline_facts(db_url: str, incident_id: int) -> tuple[Counter, int]:
    """(kind, dedupe key or transition) of every event, and how many were ``run.resumed`` notes."""
    settings = make_settings(db_url)
    bot = build_bot(settings, clock=SystemClock(), extensions=[])
    try:
        _, events = bot.services.incidents.timeline(incident_id)
    finally:
        bot.close()
    facts = Counter()
    resumed = 0
    for e in events:
        if e.kind == "run.resumed":
            resumed += 1
            continue
        if e.kind == "page.queued" or e.kind == "incident.notified":
            continue
        key = re.sub(r":[0-9a-f]{16}(:\d+)?", "", e.dedupe_key or "")  # plan hashes and times differ per database
        facts[(e.kind, key or e.data.get("trigger") or e.text)] += 1
    return facts, resumed


def run_row(db_url: str, run_id: int) -> PlaybookRun:
    bot = build_bot(make_settings(db_url), clock=SystemClock(), extensions=[])
    try:
        with bot.db.session() as session:
            return session.get(PlaybookRun, run_id)  # type: ignore[return-value]
    finally:
        bot.close()


def with_inside_kills(labels: list[str]) -> list[str]:
    out = []
    for label in labels:
        out.append(label)
        if label.startswith("step:") and label.endswith(":started"):
            out.append(f"inside:step:{label.split(':')[1]}")
    return out


def test_killed_at_every_step_boundary_the_run_completes_exactly_once(tmp_path: Path) -> None:
    ref_db = f"sqlite:///{tmp_path / 'reference.db'}"
    ref_file = tmp_path / "reference.txt"
    labels: list[str] = []
    ref_inc, ref_run = prepare(ref_db, "write-file", {"path": str(ref_file)}, labels=labels, execute=True)
    assert labels == ["claimed", "step:0:started", "step:0:done", "step:0:checkpointed",
                      "step:1:started", "step:1:done", "step:1:checkpointed",
                      "step:2:started", "step:2:done", "step:2:checkpointed", "verify:done", "finished"]
    reference, _ = timeline_facts(ref_db, ref_inc)

    db = f"sqlite:///{tmp_path / 'crashes.db'}"
    target = tmp_path / "changes.txt"
    inc, run_id = prepare(db, "write-file", {"path": str(target)})
    boundaries = with_inside_kills(labels)
    assert crash_at_every_boundary(db, run_id, boundaries) == "succeeded"

    assert target.read_text().splitlines() == ["run:step-0", "run:step-1", "run:step-2"]  # each change once
    facts, resumed = timeline_facts(db, inc)
    assert all(n == 1 for n in facts.values()), [f for f, n in facts.items() if n > 1]
    assert set(facts) == set(reference)  # every event of an undisturbed run, once
    assert 1 <= resumed <= len(boundaries)
    row = run_row(db, run_id)
    assert row.state == "succeeded" and row.checkpoint == 3


def test_killed_during_rollback_the_rollback_completes_exactly_once(tmp_path: Path) -> None:
    ref_db = f"sqlite:///{tmp_path / 'reference.db'}"
    labels: list[str] = []
    params = {"fail_at": 2}
    ref_inc, _ = prepare(ref_db, "write-file", {"path": str(tmp_path / "ref.txt"), **params}, labels=labels,
                         execute=True)
    rollback = labels[labels.index("rollback:begin"):]
    # the failed step is undone too (it may have half-applied; undo is idempotent), then the others in reverse
    assert rollback == ["rollback:begin", "rollback:2:started", "rollback:2:done", "rollback:1:started", "rollback:1:done", "rollback:0:started",
                        "rollback:0:done", "finished"]
    reference, _ = timeline_facts(ref_db, ref_inc)

    db = f"sqlite:///{tmp_path / 'crashes.db'}"
    target = tmp_path / "changes.txt"
    inc, run_id = prepare(db, "write-file", {"path": str(target), **params})
    assert crash_at_every_boundary(db, run_id, rollback) == "rolled_back"
    assert target.read_text() == ""  # both written lines undone, nothing written twice
    facts, _ = timeline_facts(db, inc)
    assert all(n == 1 for n in facts.values()) and set(facts) == set(reference)


def test_a_throttle_killed_at_every_boundary_creates_each_object_once(tmp_path: Path) -> None:
    with ApiServerStandIn() as apiserver:
        kubeconfig = str(apiserver.write_kubeconfig(tmp_path / "kubeconfig"))
        params = {"subject": "serviceaccount:team-a/noisy-controller"}
        db = f"sqlite:///{tmp_path / 'crashes.db'}"
        inc, run_id = prepare(db, "throttle-client", params, kubeconfig=kubeconfig)
        boundaries = ["claimed"] + [f"step:{i}:{b}" for i in range(3) for b in ("started", "done", "checkpointed")] \
            + ["verify:done", "finished"]
        assert crash_at_every_boundary(db, run_id, boundaries, kubeconfig=kubeconfig) == "succeeded"

        creates = Counter(r.path.split("?")[0].rsplit("/", 1)[1] for r in apiserver.request_log
                          if r.method == "POST" and "dryRun" not in r.path)
        assert creates == {"prioritylevelconfigurations": 1, "flowschemas": 1}
        name = run_row(db, run_id).plan["facts"]["name"]
        landed = apiserver.classify("system:serviceaccount:team-a:noisy-controller", namespace="default")
        assert landed is not None and landed["metadata"]["name"] == name
        facts, resumed = timeline_facts(db, inc)
        assert all(n == 1 for n in facts.values())
        assert facts[("state.changed", "mark_mitigated")] == 1 and resumed >= 1
