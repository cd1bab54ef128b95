"""A test playbook whose steps write lines to a file, so a repeated change is visible.

Each step appends ``<run>:step-<i>`` to the file (one ``os.write``) and its
check looks for that line; undo removes it.  The plan includes the file's
current lines, so changing the file between approval and execution changes
the plan (and its hash).  ``fail_at`` makes one step fail, ``hang_at`` makes
one step outlast its timeout, ``verify_ok=false`` makes verification fail.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

from bot.core.errors import StepFailed
from playbooks.engine import Param, Plan, PlanContext, Playbook, Step, StepContext, Verdict

STEPS = 3
KILL_INSIDE_STEP = "FILE_PLAYBOOK_KILL_INSIDE_STEP"
_release = threading.Event()


def _lines(path: str) -> list[str]:
    p = Path(path)
    return p.read_text().splitlines() if p.exists() else []


def _line(ctx: StepContext, index: int) -> str:
    return f"{ctx.params['tag']}:step-{index}"


def _plan(ctx: PlanContext) -> Plan:
    path, tag = ctx.params["path"], ctx.params["tag"]
    before = _lines(path)
    return Plan(changes=[{"action": "append", "path": path, "line": f"{tag}:step-{i}"} for i in range(STEPS)],
                lines=[f"append {tag}:step-{i} to {path}" for i in range(STEPS)],
                impact={"files": 1}, facts={"before": before},
                rollback=[f"remove {tag}:step-{i}" for i in reversed(range(STEPS))])


def _step(index: int, timeout: float = 5) -> Step:
    def check(ctx: StepContext) -> bool:
        return _line(ctx, index) in _lines(ctx.params["path"])

    def do(ctx: StepContext) -> dict[str, Any]:
        if ctx.params["fail_at"] == index:
            raise StepFailed(f"injected failure at step {index}")
        if ctx.params["hang_at"] == index:
            _release.wait(30)
        fd = os.open(ctx.params["path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (_line(ctx, index) + "\n").encode())
        finally:
            os.close(fd)
        if os.environ.get(KILL_INSIDE_STEP) == str(index):  # the crash tests: die after the change, inside the step
            os.kill(os.getpid(), signal.SIGKILL)
        return {"wrote": _line(ctx, index)}

    def undo(ctx: StepContext) -> None:
        path = Path(ctx.params["path"])
        kept = [ln for ln in _lines(str(path)) if ln != _line(ctx, index)]
        path.write_text("".join(ln + "\n" for ln in kept))

    return Step(f"write line {index}", do=do, check=check, undo=undo, timeout=timeout, describe=f"append step-{index}")


def _verify(ctx: StepContext) -> Verdict:
    if not ctx.params["verify_ok"]:
        return Verdict(False, "verify_ok=false")
    lines = _lines(ctx.params["path"])
    missing = [f"{ctx.params['tag']}:step-{i}" for i in range(STEPS) if f"{ctx.params['tag']}:step-{i}" not in lines]
    return Verdict(not missing, "all lines written" if not missing else f"missing {missing}")


def file_playbook(name: str = "write-file", risk: str = "low", *, undo: bool = True, timeout: float = 5) -> Playbook:
    steps = tuple(_step(i, timeout) for i in range(STEPS))
    if not undo:
        steps = tuple(Step(s.name, do=s.do, check=s.check, timeout=s.timeout) for s in steps)
    return Playbook(
        name=name, summary="append lines to a file (test playbook)", risk=risk,
        params=(Param("path", "the file to write"), Param("tag", "the line prefix", default="run"),
                Param("fail_at", "index of a step that fails", type="int", default=-1),
                Param("hang_at", "index of a step that hangs past its timeout", type="int", default=-1),
                Param("verify_ok", "whether verification passes", type="bool", default=True)),
        plan=_plan, steps=steps, verify=_verify, blast_radius={"files": 1}, ttl_param=None,
    )


def release_hung_steps() -> None:
    _release.set()


def arm_hung_steps() -> None:
    _release.clear()


def registry_for_tests():  # type: ignore[no-untyped-def]
    """The throttle playbook plus file playbooks of every risk (not the whole library: tests stay independent)."""
    from playbooks.engine import Registry
    from playbooks.library import throttle_client

    registry = Registry([throttle_client.PLAYBOOK])
    for name, risk in (("write-file", "low"), ("write-file-high", "high"), ("write-file-critical", "critical")):
        registry.register(file_playbook(name, risk))
    registry.register(file_playbook("write-file-no-undo", "low", undo=False))
    registry.register(file_playbook("write-file-quick-timeout", "low", timeout=0.3))
    return registry
