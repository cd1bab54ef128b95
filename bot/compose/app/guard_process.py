"""The admission webhook in a process of its own, started and watched by ``serve``.

An AdmissionReview's answer is on the kube-apiserver's write path (goal: p99 10 ms at 200 reviews/s).
In ``serve`` it would share CPython's interpreter lock with everything else the bot does, and the
bot is busiest exactly when deletes go wrong: an alert storm's ingest, diagnosis, Slack deliveries.
In a child process it shares the lock only with its own worker (state refresh, count publishing,
denials on timelines): the work any replica of the guard does.

``serve`` runs ``incident-bot guard-process --parent-pid PID`` (``bot.compose.app.guard_child``):

- the parent writes the settings, pickled, on the child's stdin and closes it (secrets never appear
  in an argument list or an environment another process could read);
- the child writes one JSON line per refresh on its stdout: its decision counts and open breakers,
  which the parent's ``/metrics`` shows, with ``incident_bot_guard_process_up`` and the restarts;
- a child that exits is started again (1 s, doubling to 30 s while it keeps failing at once);
- the child dies with its parent (``PR_SET_PDEATHSIG``, a changed parent pid, a closed pipe), so a
  SIGKILLed ``serve`` leaves no webhook behind to hold the port the next ``serve`` needs.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bot.core.config import Settings

log = logging.getLogger(__name__)
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
HEALTHY_AFTER_SECONDS = 60.0  # a child that ran this long before exiting restarts after the first backoff again
STOP_SECONDS = 10.0  # SIGTERM, then this long for a clean exit, then SIGKILL


@dataclass(frozen=True)
class Report:
    """What the child last said: its decision counts and open breakers (empty before its first line)."""

    decisions: dict[tuple[str, str, str], int] = field(default_factory=dict)
    breakers_open: dict[tuple[str, str], int] = field(default_factory=dict)
    listening: bool = False

    @classmethod
    def parse(cls, line: str) -> Report:
        data = json.loads(line)
        return cls(decisions={(c, d, r): int(n) for c, d, r, n in data["decisions"]},
                   breakers_open={(c, r): int(n) for c, r, n in data["breakers_open"]},
                   listening=bool(data["listening"]))

    def line(self) -> str:
        return json.dumps({"decisions": [[*k, n] for k, n in sorted(self.decisions.items())],
                           "breakers_open": [[*k, n] for k, n in sorted(self.breakers_open.items())],
                           "listening": self.listening}) + "\n"


def child_settings(settings: Settings) -> Settings:
    """The settings the child runs with: the guard in its own threads, no migrations (serve ran them)."""
    copy = settings.model_copy(deep=True)
    copy.guard.own_process = False
    copy.auto_migrate = False
    return copy


class GuardProcess:
    """Starts the child, reads its reports, starts it again when it exits, stops it with ``serve``."""

    def __init__(self, settings: Settings, command: list[str] | None = None) -> None:
        self.settings = settings
        self.command = command or [sys.executable, "-m", "bot.compose.cli.main", "guard-process"]
        self.report = Report()
        self.restarts = 0
        self._child: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._exited_counts: Counter[tuple[str, str, str]] = Counter()  # counts of children that exited

    def start(self) -> None:
        # the child's death signal follows the thread that started it: this thread lives until stop()
        self._thread = threading.Thread(target=self._supervise, name="admission-guard-process", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.pid if child is not None and child.poll() is None else None

    @property
    def up(self) -> bool:
        return self.pid is not None and self.report.listening

    def decisions(self) -> Counter[tuple[str, str, str]]:
        """Every decision since ``serve`` started: the exited children's and the running one's."""
        with self._lock:
            return self._exited_counts + Counter(self.report.decisions)

    def _supervise(self) -> None:
        backoff = FIRST_BACKOFF_SECONDS
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                child = self._spawn()
            except OSError as exc:
                log.error("admission guard: could not start its process (%s); trying again in %.0fs", exc, backoff)
            else:
                self._read(child)
                code = child.wait()
                with self._lock:  # a counter never goes down: the exited child's counts stay in the total
                    self._exited_counts += Counter(self.report.decisions)
                    self.report = Report()
                if self._stopping.is_set():
                    return
                self.restarts += 1
                if time.monotonic() - started > HEALTHY_AFTER_SECONDS:
                    backoff = FIRST_BACKOFF_SECONDS
                log.error("admission guard: its process exited with status %s; starting it again in %.0fs "
                          "(meanwhile the apiservers' failurePolicy Ignore lets writes through)", code, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [*self.command, "--parent-pid", str(os.getpid())]
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        self._child = child
        assert child.stdin is not None
        try:
            child.stdin.write(pickle.dumps(child_settings(self.settings)))
            child.stdin.close()
        except BrokenPipeError:  # it died at once; _read sees the end of its output and wait() its status
            pass
        return child

    def _read(self, child: subprocess.Popen[bytes]) -> None:
        out: IO[bytes] | None = child.stdout
        if out is None:
            return
        for raw in out:
            try:
                report = Report.parse(raw.decode())
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("admission guard: its process wrote a line that is not a report (%s)", type(exc).__name__)
                continue
            with self._lock:
                self.report = report

    def stop(self) -> None:
        self._stopping.set()
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self._thread is not None:
            self._thread.join(STOP_SECONDS)


def decision_metrics(decisions: dict[tuple[str, str, str], int],
                     breakers_open: dict[tuple[str, str], int]) -> list[Metric]:
    """The guard's decisions and open breakers, whether they live in this process or in the child."""
    family = CounterMetricFamily("incident_bot_guard_decisions", "Admission reviews answered by this replica, "
                                 "by cluster, decision (allow, deny, would-deny, invalid) and reason.",
                                 labels=["cluster", "decision", "reason"])
    for (cluster, decision, reason), n in sorted(decisions.items()):
        family.add_metric([cluster, decision, reason], n)
    tripped = GaugeMetricFamily("incident_bot_guard_breakers_open", "Mass-deletion breakers tripped and not lifted.",
                                labels=["cluster", "resource"])
    for (cluster, resource), n in sorted(breakers_open.items()):
        tripped.add_metric([cluster, resource], n)
    return [family, tripped]


def process_metrics(process: GuardProcess) -> list[Metric]:
    """The child's decisions and breakers as ``serve``'s /metrics shows them, and whether it is up."""
    families = decision_metrics(dict(process.decisions()), process.report.breakers_open)
    up = GaugeMetricFamily("incident_bot_guard_process_up", "1 while the admission guard's own process runs and "
                           "listens; 0 means the apiservers' failurePolicy Ignore lets every write through.")
    up.add_metric([], 1.0 if process.up else 0.0)
    restarts = CounterMetricFamily("incident_bot_guard_process_restarts", "Times serve started the admission "
                                   "guard's process again after it exited.")
    restarts.add_metric([], float(process.restarts))
    return [*families, up, restarts]


def report_of(guard: Any, listening: bool) -> Report:
    """The child's report of its in-process guard (``bot.domain.guard.decide.Guard``)."""
    open_by: Counter[tuple[str, str]] = Counter((t.cluster, t.resource) for t in guard.breaker.tripped())
    return Report(decisions=dict(guard.counts), breakers_open=dict(open_by), listening=listening)
