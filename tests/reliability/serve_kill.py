"""SIGKILL of ``incident-bot serve`` in the middle of playbook runs, chosen by watching the database.

``serve`` runs as its own process, as an operator runs it (YAML settings, Slack in
HTTP mode and PagerDuty configured, so its outbox senders deliver to loopback
fakes while the playbook worker executes).  The test opens an incident, takes
command, records the cause and has the commander approve a run (from its own
process, on the same database); ``serve``'s worker starts it.  A ``KillPoint``
names where to stop it: *inside* step i (its ``run_steps`` row is ``running``:
the step was entered, its checkpoint not written) or *after* step i (the run's
``checkpoint`` passed it).  The test polls the database and sends SIGKILL from
outside the moment it sees that point (no hook in the bot: no ``finally``, no
atexit).  Where the process really stopped (a few milliseconds later) is read
back and reported.  ``serve`` is then started again; its worker finds the run
``running`` with a stale heartbeat and resumes it at its checkpoint.

Afterwards: the run finished (or, killed inside a step that cannot tell whether
its change is in place, was handed back to the commander), the world holds each
change exactly once (``playbook_world``), the timeline holds each step once, and
every message reached Slack and the pager once: no delivery key posted twice, no
pending message, one pager incident per bot incident and no trigger sent twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import create_engine, text

from bot.compose.app.bot import Bot, build_bot
from bot.core.config import load_settings
from bot.core.store.models import PlaybookRun, TimelineEvent
from tests.reliability.playbook_world import Case, World
from tests.reliability.replicas import PAGER_KEY
from tests.support.fake_pagers import FakePagerDuty
from tests.support.fake_slack import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 300.0  # a loaded 2-core machine can take a minute to import, migrate and listen
RUN_TIMEOUT = 240.0
WATCH_EVERY = 0.005  # how often the database is read for the kill point (seconds)


@dataclass(frozen=True)
class KillPoint:
    step: int
    inside: bool

    def __str__(self) -> str:
        return f"{'inside' if self.inside else 'after'} step {self.step + 1}"


@dataclass
class Kill:
    playbook: str
    aimed: str
    landed: str


@dataclass
class Outcome:
    """What one chain of kills produced."""

    kills: list[Kill] = field(default_factory=list)
    starts: int = 0
    start_seconds: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    messages: int = 0
    slack_calls: int = 0
    pager_calls: int = 0
    lost: int = 0
    duplicated: int = 0
    resent_triggers: int = 0  # PagerDuty triggers sent again after a kill, folded into the open incident
    seconds: float = 0.0

    def line(self) -> str:
        starts = sorted(self.start_seconds) or [0.0]
        return (f"{len(self.kills)} SIGKILLs ({self.starts} starts of serve, median {starts[len(starts) // 2]:.1f} s "
                f"to /healthz): outbox messages {self.messages}, "
                f"Slack calls {self.slack_calls}, PagerDuty calls {self.pager_calls} ({self.resent_triggers} "
                f"triggers re-sent after a kill, folded by dedup_key), lost {self.lost}, "
                f"duplicated {self.duplicated}, problems {len(self.problems)}, {self.seconds:.0f} s")


def settings_file(path: Path, db_url: str, world: World, slack: FakeSlack, pager: FakePagerDuty) -> Path:
    """The YAML an operator would write; the test's own bot reads the same file."""
    data = {
        "database_url": db_url,
        "slack": {"bot_token": "xoxb-serve-kill", "signing_secret": "serve-kill-secret", "api_url": slack.api_url,
                  "card_min_interval_seconds": 0, "request_timeout_seconds": 5},
        "paging": {"pagerduty": {"routing_key": pager.routing_key, "events_url": pager.events_url,
                                 "timeout_seconds": 5}},
        "oncall": {"rota": ["alice", "bob", "carol"], "rotation_start": "2026-11-23T00:00:00+00:00"},
        "playbooks": {"stale_after_seconds": 2, "worker_interval_seconds": 0.2},
        "diagnosis": {"auto": False},  # the runs are the commander's, not a diagnosis's proposals
        "evidence": {"enabled": False},
        "outbox_interval_seconds": 0.2,
        "outbox_claim_seconds": 5,  # the killed serve's claims lapse after 5 s instead of the default minute
        "clusters": world.clusters(),
    }
    path.write_text(yaml.safe_dump(data))
    return path


class Serve:
    """``incident-bot serve`` in its own process, started and SIGKILLed like an operator's.

    Each start takes a process spawned ahead (``warm_serve``: imports done, nothing read or
    written yet) and lets it run; the next one is spawned once this one answers.
    """

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.start_seconds: list[float] = []  # from the go to /healthz answering, per start
        self.spare: subprocess.Popen[bytes] | None = self._spawn()  # imports while the test opens its first run

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INCIDENT_BOT_", "SLACK_", "KUBECONFIG"))}
        env["INCIDENT_BOT_CONFIG"] = str(self.config)
        with self.log.open("ab") as log:
            return subprocess.Popen([sys.executable, "-m", "tests.reliability.warm_serve", "serve",
                                     "--port", str(self.port)],
                                    cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)

    def start(self) -> None:
        begun = time.monotonic()
        process, self.spare = self.spare or self._spawn(), None
        assert process.stdin is not None
        process.stdin.write(b"start\n")
        process.stdin.close()
        self.process = process
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    self.start_seconds.append(time.monotonic() - begun)
                    self.spare = self._spawn()  # the next start's process imports while this one works
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # waiting for a process to listen, not timing the bot
        raise AssertionError(f"serve did not answer /healthz within {START_TIMEOUT:.0f} s")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self.process = None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.spare is not None:  # never started: it has read and written nothing
            self.spare.kill()
            self.spare.wait(30)
            self.spare = None
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:  # a loaded machine: stopping slowly is not what is tested
            self.process.kill()
            self.process.wait(30)
        self.process = None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Watch:
    """Reads a run's position straight from the database (the kill trigger and its report)."""

    def __init__(self, db_url: str) -> None:
        self.engine = create_engine(db_url)

    def position(self, run_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            run = conn.execute(text("SELECT state, phase, checkpoint FROM playbook_runs WHERE id = :id"),
                               {"id": run_id}).one()
            steps = {(p, i): s for p, i, s in conn.execute(
                text('SELECT phase, "index", state FROM run_steps WHERE run_id = :id'), {"id": run_id})}
        return {"state": run[0], "phase": run[1], "checkpoint": run[2] or 0, "steps": steps}

    def reached(self, pos: dict[str, Any], point: KillPoint) -> bool:
        if pos["state"] != "running":
            return False
        if point.inside:
            return pos["phase"] == "execute" and pos["steps"].get(("execute", point.step)) == "running"
        return pos["phase"] == "verify" or (pos["phase"] == "execute" and pos["checkpoint"] > point.step)

    @staticmethod
    def describe(pos: dict[str, Any]) -> str:
        if pos["state"] != "running":
            return f"run already {pos['state']}"
        if pos["phase"] != "execute":
            return f"in {pos['phase']}"
        k = pos["checkpoint"]
        if pos["steps"].get(("execute", k)) == "running":
            return f"inside step {k + 1} (entered, no checkpoint)"
        return f"after step {k} (checkpoint {k})"

    def close(self) -> None:
        self.engine.dispose()


def open_run(bot: Bot, case: Case) -> tuple[int, int]:
    """Declared, commanded, diagnosed by hand and approved by the commander: (incident, run)."""
    case.before()
    incidents = bot.services.incidents
    row = incidents.declare(case.title, actor="alice", severity="sev1", cluster=case.cluster)
    incidents.ack(row.id, actor="alice")
    incidents.cause(row.id, case.title, actor="alice")
    engine = bot.services.extras["playbook_engine"]
    run = engine.service.propose(row.id, case.playbook, case.params(), requested_by=case.requested_by, source="chat")
    for approver in case.approvers:
        engine.service.approve(run.id, user=approver)
    return row.id, run.id  # type: ignore[return-value]


def kill_at(serve: Serve, watch: Watch, run_id: int, point: KillPoint, playbook: str) -> Kill:
    if not serve.running():
        serve.start()
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        pos = watch.position(run_id)
        if watch.reached(pos, point):
            serve.kill()
            return Kill(playbook, str(point), watch.describe(watch.position(run_id)))
        if pos["state"] not in ("approved", "running"):
            return Kill(playbook, str(point), f"missed: the run was {pos['state']} before the point was seen")
        time.sleep(WATCH_EVERY)  # polling the database for the kill point
    raise AssertionError(f"RUN-{run_id} {playbook} never reached {point}: {watch.position(run_id)}")


def finish(serve: Serve, watch: Watch, run_id: int) -> str:
    if not serve.running():
        serve.start()
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        state = watch.position(run_id)["state"]
        if state not in ("approved", "running"):
            return str(state)
        time.sleep(0.1)  # polling the database for the end of the run
    raise AssertionError(f"RUN-{run_id} did not finish: {watch.position(run_id)}")


def run_chain(db_url: str, work: Path, world: World, plan: dict[str, list[KillPoint]],
              slack: FakeSlack, pager: FakePagerDuty) -> Outcome:
    """The world's cases named in ``plan``, in turn, ``serve`` killed at each case's points, then checked."""
    started = time.monotonic()
    config = settings_file(work / "settings.yaml", db_url, world, slack, pager)
    serve = Serve(config, work / "serve.log")
    bot = build_bot(load_settings(config))
    watch = Watch(db_url)
    outcome = Outcome()
    try:
        for case in (c for c in world.cases() if c.playbook in plan):
            incident, run_id = open_run(bot, case)
            kills = [kill_at(serve, watch, run_id, p, case.playbook) for p in plan.get(case.playbook, [])]
            outcome.kills += kills
            state = finish(serve, watch, run_id)
            outcome.problems += judge(bot, world, case, incident, run_id, state, kills)
        wait_delivered(serve, watch)
    finally:
        serve.stop()
        outcome.starts, outcome.start_seconds = serve.starts, serve.start_seconds
        watch.close()
        bot.close()
    count_messages(outcome, db_url, slack, pager)
    outcome.seconds = time.monotonic() - started
    return outcome


def judge(bot: Bot, world: World, case: Case, incident: int, run_id: int, state: str, kills: list[Kill]) -> list[str]:
    """Problems with one run: its end, its effects in the world, its timeline."""
    with bot.db.session() as session:
        run = session.get(PlaybookRun, run_id)
        assert run is not None
        plan = dict(run.plan)
        events = list(session.query(TimelineEvent).filter(TimelineEvent.incident_id == incident))
    name = f"{case.playbook} (RUN-{run_id}, kills: {', '.join(k.landed for k in kills) or 'none'})"
    blind = any(k.landed.startswith(f"inside step {i + 1} ") for k in kills for i in case.blind_steps)
    if state == "handed_back" and blind:
        return []  # by design: the bot cannot tell whether the change is in place; the commander decides
    if state != "succeeded":
        return [f"{name}: ended {state}: {run.error}"]
    problems = [f"{name}: {p}" for p in case.effects(plan)]
    keys = Counter(e.dedupe_key for e in events if e.dedupe_key)
    steps = len(bot.services.extras["playbook_engine"].registry.get(case.playbook).steps)
    expected = [f"run:{run_id}:started", *(f"run:{run_id}:execute:{i}" for i in range(steps)),
                f"run:{run_id}:verified", f"run:{run_id}:succeeded"]
    problems += [f"{name}: timeline misses {k}" for k in expected if keys[k] != 1]
    mitigated = [e for e in events if e.kind == "state.changed" and (e.data or {}).get("to") == "mitigated"]
    if len(mitigated) != 1:
        problems.append(f"{name}: {len(mitigated)} moves to mitigated on the timeline")
    return problems


def wait_delivered(serve: Serve, watch: Watch) -> None:
    """``serve`` runs until its senders have nothing pending (kills may have left claims to lapse)."""
    if not serve.running():
        serve.start()
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        with watch.engine.connect() as conn:
            pending = conn.execute(text("SELECT count(*) FROM outbox WHERE status = 'pending' AND channel IN "
                                        "('chat', 'slack', 'pagerduty')")).scalar()
        if pending == 0:
            return
        time.sleep(0.2)  # polling the database for the senders to finish
    raise AssertionError("the outbox did not drain")


def count_messages(outcome: Outcome, db_url: str, slack: FakeSlack, pager: FakePagerDuty) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT channel, kind, status, incident_id FROM outbox "
                                     "WHERE channel IN ('chat', 'slack', 'pagerduty')")).all()
    finally:
        engine.dispose()
    outcome.messages, outcome.slack_calls, outcome.pager_calls = len(rows), len(slack.calls), len(pager.requests)
    outcome.lost = sum(1 for r in rows if r.status != "sent")
    keys = Counter(((m.get("metadata") or {}).get("event_payload") or {}).get("key") for m in slack.posts())
    keys.pop(None, None)
    slack_dups = sum(n - 1 for n in keys.values() if n > 1)
    pages = Counter(f"INC-{r.incident_id}" for r in rows if r.channel == "pagerduty" and r.kind == "page")
    triggers = Counter(r["body"].get("dedup_key") for r in pager.requests
                       if isinstance(r["body"], dict) and r["body"].get("event_action") == "trigger")
    lost_answers = Counter(r["body"].get("dedup_key") for r in pager.requests
                           if isinstance(r["body"], dict) and r["status"] == 504)
    outcome.lost += sum(1 for k in pages if k not in pager.opened)
    # a page delivered just before the kill, its answer never heard, is triggered again after the
    # restart (the Events API has nothing to look it up by); PagerDuty folds it into the open
    # incident by dedup_key, so the on-call is notified once: a second incident per key is a duplicate
    outcome.duplicated = slack_dups + sum(n - 1 for n in pager.opened.values() if n > 1)
    outcome.resent_triggers = sum(max(0, triggers[k] - pages[k] - lost_answers[k]) for k in triggers)
    if outcome.lost or outcome.duplicated:
        outcome.problems.append(f"messages: lost {outcome.lost}, duplicated {outcome.duplicated} "
                                f"(Slack keys twice: {[k for k, n in keys.items() if n > 1]}, "
                                f"pager triggers {dict(triggers)} for pages {dict(pages)})")


def pager_fake() -> FakePagerDuty:
    pager = FakePagerDuty(PAGER_KEY, "unused-webhook-secret")
    pager.delay_seconds = 0.1  # slow: pages are in flight when serve is killed
    return pager.start()  # type: ignore[return-value]
