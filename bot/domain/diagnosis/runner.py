"""Run a procedure: its checks, and a walk down its decision tree as soon as the answers decide it.

Nothing here may crash a diagnosis.  A check that fails — Prometheus down, a
timeout, a template naming a label the alert lacks, a check it depends on
being unknown — becomes an *unknown* result carrying the reason, and every
node whose condition reads an unknown check (or cannot be evaluated) takes
its ``unknown`` branch.  The outcome records the path taken so people (and
``incident-bot sop run --explain``) can see why the tree concluded what it did.

The tree concludes as soon as its answer is determined: after each answer the
runner walks the tree as far as the answers so far allow, and once the walk
reaches a conclusion whose every node (and the conclusion's own text) uses only
answered checks, the diagnosis is done.  A check still waiting then (an
etcdctl call to a dead member, waiting out its dial timeout) no longer delays
the root cause: checks not started are cancelled, and one already asked is
recorded as *late* evidence when its answer comes.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping

from bot.core.clock import Clock
from bot.domain.diagnosis import templating
from bot.domain.diagnosis.checks import run_kind
from bot.domain.diagnosis.model import Check, Conclusion, Procedure
from bot.domain.diagnosis.ports import ClusterAccess

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 10.0


class ResultView:
    """What templates see as ``checks.<id>``: ``known``, ``error``, ``summary`` and the kind's facts."""

    def __init__(self, result: "CheckResult") -> None:
        self.known = result.known
        self.error = result.error
        self.summary = result.summary
        self._facts = result.facts

    def __getattr__(self, name: str) -> Any:
        facts = self.__dict__.get("_facts") or {}
        if name in facts:
            return facts[name]
        raise AttributeError(name)

    def __getitem__(self, name: str) -> Any:
        return self._facts[name]


@dataclass
class CheckResult:
    id: str
    kind: str
    known: bool
    summary: str
    at: datetime
    seconds: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    description: str = ""
    answered_at: datetime | None = None  # when the answer (or the give-up) came; ``at`` is when it was asked
    late: bool = False  # answered after the tree had concluded (evidence, not part of the decision)

    @property
    def status(self) -> str:
        return "ok" if self.known else "unknown"

    def sentence(self) -> str:
        return f"check {self.id} ({self.kind}): " + (self.summary if self.known else f"unknown — {self.error}")

    def data(self) -> dict[str, Any]:
        """The timeline evidence: what was asked, what came back, when."""
        return {"check": self.id, "kind": self.kind, "status": self.status, "summary": self.summary,
                "error": self.error, "at": self.at.isoformat(),
                "answered_at": (self.answered_at or self.at).isoformat(), "seconds": round(self.seconds, 4),
                "description": self.description, **({"late": True} if self.late else {}), **self.evidence}


@dataclass(frozen=True)
class Step:
    node: str
    when: str
    verdict: str  # then | else | unknown
    target: str
    reason: str = ""

    def sentence(self) -> str:
        word = {"then": "true", "else": "false", "unknown": "unknown"}[self.verdict]
        return f"{self.node}: `{self.when}` is {word}" + (f" ({self.reason})" if self.reason else "") + \
            f" → {self.target}"


@dataclass
class Outcome:
    procedure: Procedure
    checks: list[CheckResult]
    path: list[Step]
    conclusion: Conclusion
    cause: str
    playbook: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    escalate: bool = False
    problem: str | None = None
    pending: list[str] = field(default_factory=list)  # checks not answered when the tree concluded

    @property
    def unknown_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.known]

    def data(self) -> dict[str, Any]:
        return {"procedure": self.procedure.name, "conclusion": self.conclusion.id, "cause": self.cause,
                "playbook": self.playbook, "params": self.params, "escalate": self.escalate,
                "path": [s.sentence() for s in self.path], "problem": self.problem,
                **({"concluded_before": self.pending} if self.pending else {}),
                "checks": {c.id: {"status": c.status, "summary": c.summary if c.known else c.error}
                           for c in self.checks}}


class Runner:
    """Runs procedures against one cluster's ``ClusterAccess``."""

    def __init__(self, access: ClusterAccess, clock: Clock, *, check_timeout: float = DEFAULT_TIMEOUT,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.access = access
        self.clock = clock
        self.check_timeout = check_timeout
        self.sleep = sleep  # between the answers of a ``repeat`` (injectable for tests)

    def run(self, procedure: Procedure, incident: Mapping[str, Any], *,
            on_check: Callable[[CheckResult], None] | None = None) -> Outcome:
        """Ask the checks (each as soon as the checks it uses have answered) until the tree is decided.

        ``on_check`` hears every answer when it comes, including late ones
        (``late=True``) that arrive after this returned.
        """
        context: dict[str, Any] = {"incident": dict(incident), "cluster": dict(self.access.config), "checks": {}}
        try:
            context["vars"] = templating.render(dict(procedure.vars), context)
        except Exception as exc:  # a var that needs a missing label: the checks using it say unknown
            log.info("procedure %s: vars could not be rendered: %s", procedure.name, exc)
            context["vars"] = {}
        declared = {check.id: n for n, check in enumerate(procedure.checks)}
        needs = {check.id: templating.referenced_checks_in(dict(check.params)) & declared.keys()
                 for check in procedure.checks}
        answered: dict[str, CheckResult] = {}
        running: dict[concurrent.futures.Future[CheckResult], str] = {}
        workers = max(1, len(procedure.checks))
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="diagnosis-check")
        ahead = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="diagnosis-ahead")
        decided: tuple[list[Step], str] | None = None
        try:
            while True:
                # every check whose inputs are answered starts now: against dead etcd members each
                # one waits for its own timeout, and in sequence those waits would add up
                for check in procedure.checks:
                    if check.id not in answered and check.id not in running.values() and needs[check.id] <= answered.keys():
                        inputs = dict(context, checks=dict(context["checks"]))
                        running[ahead.submit(self._run_check, executor, check, inputs, list(answered.values()))] = check.id
                if not running:
                    break
                done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: declared[running[f]]):
                    result = future.result()
                    del running[future]
                    answered[result.id] = result
                    context["checks"][result.id] = ResultView(result)
                    if on_check is not None:
                        on_check(result)
                decided = self._walk(procedure, context, answered, settled_only=True)
                if decided is not None:
                    break
            for future in running:  # asked already: its answer is kept as late evidence
                future.add_done_callback(lambda f: self._late(f, on_check))
        finally:
            ahead.shutdown(wait=False, cancel_futures=True)
            executor.shutdown(wait=False, cancel_futures=True)
        if decided is None:
            decided = self._walk(procedure, context, answered)
            assert decided is not None  # without settled_only the walk always reaches a conclusion
        path, conclusion = decided
        results = sorted(answered.values(), key=lambda r: declared[r.id])
        outcome = self._conclude(procedure, conclusion, context, results, path)
        outcome.pending = [c.id for c in procedure.checks if c.id not in answered]
        return outcome

    @staticmethod
    def _late(future: "concurrent.futures.Future[CheckResult]", on_check: Callable[[CheckResult], None] | None) -> None:
        if future.cancelled() or future.exception() is not None or on_check is None:
            return
        result = future.result()
        result.late = True
        try:
            on_check(result)
        except Exception:  # the diagnosis is over; losing a late answer must not break a worker thread
            log.info("a late answer of check %s could not be recorded", result.id, exc_info=True)

    # -- checks
    def _run_check(self, executor: concurrent.futures.Executor, check: Check, context: dict[str, Any],
                   earlier: list[CheckResult]) -> CheckResult:
        result = self._ask(executor, check, context, earlier)
        result.answered_at = self.clock.now()
        return result

    def _ask(self, executor: concurrent.futures.Executor, check: Check, context: dict[str, Any],
             earlier: list[CheckResult]) -> CheckResult:
        at = self.clock.now()
        # the fields every answer of this check shares; a partial keeps them typed (a dict would not)
        answer = functools.partial(CheckResult, id=check.id, kind=check.kind, at=at, description=check.description)
        depends = templating.referenced_checks_in(dict(check.params))
        missing = [r for r in earlier if r.id in depends and not r.known]
        if missing:
            return answer(known=False, summary="",
                          error=f"depends on check {missing[0].id}, which is unknown",
                          evidence={"params": dict(check.params)})
        try:
            params = templating.render(dict(check.params), context)
        except Exception as exc:
            return answer(known=False, summary="", error=f"its parameters could not be filled: {exc}",
                          evidence={"params": dict(check.params)})
        timeout = check.timeout or self.check_timeout
        attempts = check.repeat.times if check.repeat else 1
        slept = 0.0  # the bot's own pauses between answers: its time, not the component's (drill scorecards)
        for attempt in range(1, attempts + 1):
            future = executor.submit(run_kind, check.kind, self.access, params, timeout)
            try:
                facts, seconds = future.result(timeout=timeout + 1.0)
            except concurrent.futures.TimeoutError:
                return answer(known=False, summary="", seconds=timeout,
                              error=f"no answer within {timeout:g}s", evidence=_asked(check.kind, params))
            except Exception as exc:  # any failure is an unknown, never a crash
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                return answer(known=False, summary="", error=message,
                              evidence=_asked(check.kind, params))
            result = answer(known=True, summary=facts.summary, seconds=seconds, facts=facts.facts,
                            evidence=facts.evidence)
            if check.repeat is None:
                return result
            result.evidence = {**result.evidence, "attempts": attempt, "slept_seconds": round(slept, 3)}
            try:
                settled = bool(templating.evaluate(check.repeat.until, {**context, "result": ResultView(result)}))
            except Exception:
                settled = False
            if settled or attempt == attempts:
                if attempt > 1:
                    result.summary += f" (answer {attempt} of {attempts})"
                return result
            self.sleep(check.repeat.every)
            slept += check.repeat.every
        raise AssertionError("unreachable")

    # -- the tree
    def _walk(self, procedure: Procedure, context: dict[str, Any], answered: Mapping[str, CheckResult], *,
              settled_only: bool = False) -> tuple[list[Step], str] | None:
        """Walk the tree; with ``settled_only``, None while a node or the conclusion needs an unanswered check."""
        path: list[Step] = []
        current = procedure.start
        for _ in range(len(procedure.nodes) + 1):
            node = procedure.nodes.get(current)
            if node is None:
                if settled_only:
                    conclusion = procedure.conclusions[current]
                    used = templating.referenced_checks_in(conclusion.cause) | templating.referenced_checks_in(
                        dict(conclusion.playbook.params) if conclusion.playbook else {})
                    if any(c not in answered for c in used if c in procedure_ids(procedure)):
                        return None
                return path, current
            if settled_only and any(c not in answered for c in node.checks_used):
                return None
            verdict, reason = "unknown", ""
            unknown = [answered[c] for c in node.checks_used if c in answered and not answered[c].known]
            if unknown:
                reason = f"check {unknown[0].id} is unknown: {unknown[0].error}"
            else:
                try:
                    value = templating.evaluate(node.when, context)
                    verdict = "then" if value else "else"
                except Exception as exc:
                    reason = f"cannot evaluate: {exc}"
            target = node.branch(verdict)
            path.append(Step(node.id, node.when, verdict, target, reason))
            current = target
        raise RuntimeError(f"procedure {procedure.name}: the tree did not reach a conclusion")  # validated away

    def _conclude(self, procedure: Procedure, conclusion_id: str, context: dict[str, Any],
                  results: list[CheckResult], path: list[Step]) -> Outcome:
        conclusion = procedure.conclusions[conclusion_id]
        try:
            cause = str(templating.render(conclusion.cause, context)).strip()
            params = templating.render(dict(conclusion.playbook.params), context) if conclusion.playbook else {}
        except Exception as exc:
            problem = f"conclusion {conclusion.id} could not be filled in ({exc}); escalating instead"
            return Outcome(procedure, results, path, conclusion, cause=f"{conclusion.id}: {conclusion.cause}",
                           escalate=True, problem=problem)
        return Outcome(procedure, results, path, conclusion, cause=cause,
                       playbook=conclusion.playbook.name if conclusion.playbook else None,
                       params=params, escalate=conclusion.escalate)


def procedure_ids(procedure: Procedure) -> set[str]:
    return {check.id for check in procedure.checks}


def _asked(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """What a failed check asked, so the evidence shows it even without an answer."""
    keep = {k: v for k, v in params.items() if isinstance(v, (str, int, float, bool, list))}
    return {"params": keep, **({"query": params["query"]} if "query" in params else {})}
