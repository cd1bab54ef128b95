"""Fault drills, repeated: the 1-5-10 stage times in the sandbox, the bot's own share, false alerts.

    .venv/bin/python benchmarks/drills.py [--runs 5] [--json FILE] [SCENARIO ...]

Each run is a full drill in a fresh sandbox (real etcd, kube-apiservers, HAProxy, Prometheus,
Alertmanager, the bot in-process), one after another.  Prints one line per run (with the load
average when it ended, since a loaded machine stretches every figure): the stages' times from the
fault, the webhook's arrival, the bot's own share, and the alerts received whose rule names the
throttle-client playbook in a drill without a flood (a false flood alert).  Then, per scenario and
stage, the median and worst against the sandbox goals, and the issue's goals with a verdict:

* client-flood: announced within 2.5 s of the flood's start (1 s scrape, the fast rules);
* etcd-quorum-loss: diagnosed within 3 s of the webhook's arrival.

Exits 1 when a drill failed, a false flood alert came, or a goal was missed in the median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.compose.sandbox.drill import Deadlines, Drill
from bot.compose.sandbox.scenarios import SCENARIOS
from bot.compose.sandbox.scorecard import SANDBOX_GOALS, Scorecard

FLOOD_PLAYBOOK = "throttle-client"
# the issue's goals: scenario -> (measure, seconds)
ISSUE_GOALS = {"client-flood": ("notified", 2.5), "etcd-quorum-loss": ("webhook_to_diagnosed", 3.0)}


def measures(card: Scorecard) -> dict[str, Any]:
    """One run's figures from its scorecard."""
    stages = {s.name: s for s in card.stages}
    notify, diagnose = stages["notify"], stages["diagnose"]
    arrived = notify.waiting_seconds  # fault -> the webhook's arrival (or the prober's detection)
    out: dict[str, Any] = {
        "notified": notify.elapsed, "arrived": arrived, "bot_notify": notify.bot_seconds,
        "diagnosed": diagnose.elapsed, "bot_diagnose": diagnose.bot_seconds,
        "mitigated": stages["mitigate"].elapsed if stages["mitigate"].applicable else None,
        "webhook_to_diagnosed": (diagnose.elapsed - arrived
                                 if diagnose.elapsed is not None and arrived is not None else None),
        "first_alert": card.alerts[0]["alertname"] if card.alerts else None,
        "flood_alerts": sorted({a["alertname"] for a in card.alerts if a.get("playbook") == FLOOD_PLAYBOOK}),
    }
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def run_scenario(name: str, runs: int, rows: list[dict[str, Any]]) -> int:
    """``runs`` drills of one scenario; appends a row per run; returns the number of failures."""
    failures = 0
    with tempfile.TemporaryDirectory(prefix="ib-drill-bench-") as tmp:
        for i in range(runs):
            start = time.monotonic()
            try:
                result = Drill(name, out_dir=Path(tmp) / f"run-{i}", echo=lambda line: None,
                               deadlines=Deadlines(notify=30, diagnose=60, mitigate=120)).run()
            except Exception as exc:  # the scenario itself broke (its fault did not take): the next run goes on
                failures += 1
                print(f"{name}: run {i + 1} BROKE: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                continue
            row = {"scenario": name, "run": i + 1, "passed": result.passed, "wall": time.monotonic() - start,
                   "load": os.getloadavg()[0], **measures(result.scorecard)}
            false = row["flood_alerts"] if SCENARIOS[name].playbook != FLOOD_PLAYBOOK else []
            row["false_flood_alerts"] = false
            rows.append(row)
            if not result.passed:
                failures += 1
                print(f"{name}: run {i + 1} FAILED: {result.scorecard.failures}", file=sys.stderr)
            print(f"{name:<18}{i + 1:>4}{_fmt(row['notified']):>9}{_fmt(row['arrived']):>9}"
                  f"{_fmt(row['bot_notify']):>9}{_fmt(row['diagnosed']):>10}{_fmt(row['webhook_to_diagnosed']):>9}"
                  f"{_fmt(row['bot_diagnose']):>9}{_fmt(row['mitigated']):>10}{row['load']:>6.1f}"
                  f"  {row['first_alert'] or '(prober)'}" + (f"  FALSE: {', '.join(false)}" if false else ""),
                  flush=True)
    return failures


def summarise(rows: list[dict[str, Any]], names: list[str]) -> int:
    """Per scenario and stage, median and worst; the issue's goals with their verdict. Returns misses."""
    missed = 0
    print(f"\n{'scenario':<18}{'stage':<10}{'median':>8}{'worst':>8}{'goal':>7}{'bot (median)':>14}  runs")
    for name in names:
        mine = [r for r in rows if r["scenario"] == name]
        for stage, key, bot in (("notify", "notified", "bot_notify"), ("diagnose", "diagnosed", "bot_diagnose"),
                                ("mitigate", "mitigated", None)):
            values = [r[key] for r in mine if r[key] is not None]
            if not values:
                print(f"{name:<18}{stage:<10}{'n/a':>8}")
                continue
            bots = [r[bot] or 0.0 for r in mine if bot and r[key] is not None]
            print(f"{name:<18}{stage:<10}{statistics.median(values):>7.2f}s{max(values):>7.2f}s"
                  f"{SANDBOX_GOALS[stage]:>6.0f}s{(statistics.median(bots) if bots else 0.0):>13.2f}s  {len(values):>4}")
        false = sum(len(r["false_flood_alerts"]) for r in mine)
        if false:
            missed += 1
            print(f"{name:<18}FALSE flood alerts in {sum(1 for r in mine if r['false_flood_alerts'])} of {len(mine)} runs")
        if name in ISSUE_GOALS:
            key, goal = ISSUE_GOALS[name]
            values = [r[key] for r in mine if r[key] is not None]
            within = sum(1 for v in values if v <= goal)
            met = bool(values) and statistics.median(values) <= goal
            missed += 0 if met else 1
            shown = ", ".join(f"{v:.2f}" for v in values) or "none"
            loads = ", ".join(f"{r['load']:.1f}" for r in mine)
            print(f"GOAL {name}: {key} <= {goal:.1f}s: {'MET' if met else 'NOT MET'} (median "
                  f"{statistics.median(values) if values else float('nan'):.2f}s, {within} of {len(mine)} runs within; "
                  f"runs {shown}; load {loads})")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    args = parser.parse_args(argv)
    unknown = [n for n in args.scenarios if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]}; one of {', '.join(SCENARIOS)}")
    print(f"{'scenario':<18}{'run':>4}{'notified':>9}{'webhook':>9}{'bot':>9}{'diagnosed':>10}{'wh->diag':>9}"
          f"{'bot':>9}{'mitigated':>10}{'load':>6}  first alert")
    rows: list[dict[str, Any]] = []
    failed = sum(run_scenario(name, args.runs, rows) for name in args.scenarios)
    missed = summarise(rows, args.scenarios)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
