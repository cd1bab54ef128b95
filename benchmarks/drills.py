"""Fault drills, repeated: the 1-5-10 stage times in the sandbox, and the bot's own share of them.

    .venv/bin/python benchmarks/drills.py [--runs 3] [SCENARIO ...]

Each run is a full drill in a fresh sandbox (real etcd, HAProxy, Prometheus,
Alertmanager, apiserver stand-ins, the bot in-process).  Prints, per scenario
and stage, the median and worst time from the fault and the median time the
bot itself spent, against the sandbox goals (5 s / 15 s / 60 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bot.compose.sandbox.drill import Deadlines, Drill
from bot.compose.sandbox.scenarios import SCENARIOS
from bot.compose.sandbox.scorecard import SANDBOX_GOALS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    args = parser.parse_args(argv)
    failed = 0
    print(f"{'scenario':<18}{'stage':<10}{'median':>8}{'worst':>8}{'goal':>7}{'bot (median)':>14}  runs  wall/drill")
    for name in args.scenarios:
        samples: dict[str, list[float]] = {s: [] for s in SANDBOX_GOALS}
        bot: dict[str, list[float]] = {s: [] for s in SANDBOX_GOALS}
        walls = []
        with tempfile.TemporaryDirectory(prefix="ib-drill-bench-") as tmp:
            for i in range(args.runs):
                start = time.monotonic()
                result = Drill(name, out_dir=Path(tmp) / f"run-{i}", echo=lambda line: None,
                               deadlines=Deadlines(notify=30, diagnose=60, mitigate=120)).run()
                walls.append(time.monotonic() - start)
                if not result.passed:
                    failed += 1
                    print(f"{name}: run {i} FAILED: {result.scorecard.failures}", file=sys.stderr)
                for stage in result.scorecard.stages:
                    if stage.applicable and stage.elapsed is not None:
                        samples[stage.name].append(stage.elapsed)
                        bot[stage.name].append(stage.bot_seconds or 0.0)
        for stage, values in samples.items():
            if not values:
                print(f"{name:<18}{stage:<10}{'n/a':>8}")
                continue
            print(f"{name:<18}{stage:<10}{statistics.median(values):>7.1f}s{max(values):>7.1f}s"
                  f"{SANDBOX_GOALS[stage]:>6.0f}s{statistics.median(bot[stage]):>13.2f}s  {len(values):>4}"
                  f"  {statistics.median(walls):>8.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
