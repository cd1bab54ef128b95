"""Playbook engine costs: per-step overhead, and a throttle from approval to verified.

Run by hand (not part of the test run):

    .venv/bin/python benchmarks/bench_playbooks.py [--steps 50] [--throttles 5] [--database-url URL]

* engine overhead: a playbook of N no-op steps (each with a check) executed on
  a fresh SQLite file (or the given database); the time per step is what the
  checkpointing costs (step row, checkpoint, timeline event, heartbeats).
* throttle-client end to end against the apiserver stand-in over HTTP:
  approve -> re-plan -> dry run -> two creates -> verify (impersonated request)
  -> incident mitigated; then the TTL removal.  Median and max of the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.compose.app.bot import build_bot  # noqa: E402
from bot.chat import handlers_playbooks  # noqa: E402
from bot.core.clock import FakeClock  # noqa: E402
from bot.core.config import load_settings  # noqa: E402
from playbooks.engine import Param, Plan, Playbook, Registry, Step  # noqa: E402
from playbooks.library import throttle_client  # noqa: E402
from tests.support.apiserver import ApiServerStandIn  # noqa: E402


def settings_for(url: str):  # type: ignore[no-untyped-def]
    settings = load_settings(environ={})
    settings.database_url = url
    settings.oncall.rota = ["alice", "bob"]
    return settings


def noop_playbook(steps: int) -> Playbook:
    done: set[int] = set()

    def step(i: int) -> Step:
        return Step(f"s{i}", do=lambda ctx: done.add(i) or {}, check=lambda ctx: i in done)

    return Playbook("noop", "no-op steps", "low", (Param("n", "nothing", default="x"),),
                    plan=lambda ctx: Plan([{"i": i} for i in range(steps)], [f"{steps} no-op steps"]),
                    steps=tuple(step(i) for i in range(steps)))


def prepared(bot, engine, playbook: str, params: dict) -> int:  # type: ignore[no-untyped-def]
    incidents = bot.services.incidents
    row = incidents.declare("bench", actor="alice")
    incidents.ack(row.id, actor="alice")
    incidents.cause(row.id, "bench", actor="alice")
    return engine.service.propose(row.id, playbook, params, requested_by="alice").id


def bench_overhead(url: str, steps: int) -> None:
    bot = build_bot(settings_for(url), clock=FakeClock(), extensions=[])
    engine = handlers_playbooks.install(bot, registry=Registry([noop_playbook(steps)]))
    run_id = prepared(bot, engine, "noop", {})
    start = time.perf_counter()
    engine.service.approve(run_id, user="alice")
    engine.worker.tick()
    elapsed = time.perf_counter() - start
    assert engine.service.get(run_id).state == "succeeded"
    print(f"engine overhead ({bot.db.engine.dialect.name}): {steps} steps in {elapsed:.3f}s = "
          f"{elapsed / steps * 1000:.1f} ms per checkpointed step")
    bot.close()


def bench_throttle(rounds: int) -> None:
    times, removal = [], []
    with ApiServerStandIn() as apiserver, tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(f"sqlite:///{tmp}/t.db")
        settings.kubeconfig = str(apiserver.write_kubeconfig(Path(tmp) / "kubeconfig"))
        clock = FakeClock()
        bot = build_bot(settings, clock=clock, extensions=[])
        engine = handlers_playbooks.install(bot, registry=Registry([throttle_client.PLAYBOOK]))
        for i in range(rounds):
            run_id = prepared(bot, engine, "throttle-client", {"subject": f"serviceaccount:team-{i}/noisy"})
            start = time.perf_counter()
            engine.service.approve(run_id, user="alice")
            engine.worker.tick()
            times.append(time.perf_counter() - start)
            assert engine.service.get(run_id).state == "succeeded"
            clock.advance(1801)
            start = time.perf_counter()
            engine.worker.tick()
            removal.append(time.perf_counter() - start)
            assert engine.service.get(run_id).state == "rolled_back"
        bot.close()
    print(f"throttle-client approve -> verified (stand-in over HTTP): median {statistics.median(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms over {rounds}")
    print(f"throttle-client TTL removal: median {statistics.median(removal) * 1000:.0f} ms, "
          f"max {max(removal) * 1000:.0f} ms")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--throttles", type=int, default=5)
    ap.add_argument("--database-url")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_overhead(args.database_url or f"sqlite:///{tmp}/bench.db", args.steps)
    bench_throttle(args.throttles)
    return 0


if __name__ == "__main__":
    sys.exit(main())
