"""Post-mortem export at scale: 1k / 10k / 50k timeline events, md / json / html.

Run by hand (not part of the test run):

    .venv/bin/python benchmarks/bench_export.py [--sizes 1000,10000,50000] [--repeat 3] [--database-url URL]

Each size gets its own incident in a fresh SQLite file (or the given
database): a realistic mix of events (notes, watcher warnings, diagnosis
checks with evidence, run steps, a few pasted secrets for the redactor),
a handful of alerts, runs and action items.  It prints the best of
``--repeat`` wall times per format, the cost per event, and the ratios
between sizes: linear growth means the 10k/1k ratio is about 10 and the
50k/10k ratio about 5.

A user runs ``incident-bot export`` as a process, which adds interpreter
start-up and imports to the in-process figure; so each size and format is
also exported ``--process-repeat`` times by the command line (a new process
each time, formats alternated) and the *median* whole-process wall time is
printed beside the in-process best.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from bot.core.clock import FakeClock  # noqa: E402
from bot.core.config import load_settings  # noqa: E402
from bot.domain.export import export_incident  # noqa: E402
from bot.domain.incidents.service import Incidents  # noqa: E402
from bot.core.store import migrate  # noqa: E402
from bot.core.store.db import Database  # noqa: E402
from bot.core.store.models import ActionItem, Alert, PlaybookRun, RunStep, TimelineEvent  # noqa: E402

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
FORMATS = ("md", "json", "html")


def event_row(incident_id: int, i: int, n: int) -> dict:
    at = T0 + timedelta(seconds=900 * i / n)  # spread over 15 minutes
    kind = ("note", "diagnosis.check", "slo.warning", "run.step", "role.assigned", "state.changed")[i % 6]
    data: dict = {}
    text = f"event {i}: LIST pods p99 at {i % 50}s on apiserver-{i % 3}"
    if kind == "diagnosis.check":
        data = {"check": "apiserver-list-latency", "value": float(i % 97), "result": "fail" if i % 2 else "ok",
                "query": "histogram_quantile(0.99, sum by (le) (rate(apiserver_request_duration_seconds_bucket[5m])))",
                "labels": {"verb": "LIST", "resource": "pods", "instance": f"10.0.0.{i % 250}:6443"}}
    elif kind == "run.step":
        data = {"run_id": 1, "step": i % 7, "result": {"ok": True, "changed": ["flowschemas/ci-robot-throttle"]}}
    elif kind == "state.changed":
        data = {"from": "diagnosing", "to": "diagnosing", "trigger": "start_diagnosis"}
    if i % 500 == 0:
        text += " curl -H 'Authorization: Bearer abcdefghijklmnop' password=hunter2"
    return {"incident_id": incident_id, "at": at, "kind": kind, "actor": ("alice", "bob", "watcher", "diagnosis")[i % 4],
            "source": ("chat:slack", "chat:slack", "watcher", "diagnosis")[i % 4], "text": text, "data": data,
            "dedupe_key": None}


def build_incident(db: Database, incidents: Incidents, clock: FakeClock, n: int) -> int:
    row = incidents.declare(f"benchmark incident with {n} events", actor="alice", severity="sev1", cluster="prod-1")
    assert row.id is not None
    incidents.ack(row.id, actor="alice")
    with db.session() as s:
        batch = 5000
        for start in range(0, n, batch):
            s.execute(insert(TimelineEvent.__table__), [event_row(row.id, i, n) for i in range(start, min(n, start + batch))])  # type: ignore[attr-defined]
        for k in range(5):
            s.add(Alert(incident_id=row.id, fingerprint=f"fp{n}-{k}", alertname="KubeAPIErrorBudgetBurn",
                        labels={"cluster": "prod-1", "k": str(k)}, annotations={"summary": "burning"},
                        starts_at=T0, received_at=T0, updated_at=T0))
        run = PlaybookRun(incident_id=row.id, playbook="apf-throttle", plan={"changes": [1, 2]}, plan_text="+ FlowSchema x",
                          plan_hash="sha256:abc", state="succeeded", requested_at=T0)
        s.add(run)
        s.flush()
        for k in range(7):
            s.add(RunStep(run_id=run.id, index=k, name=f"step {k}", state="succeeded", started_at=T0, finished_at=T0))  # type: ignore[arg-type]
        for k in range(10):
            s.add(ActionItem(incident_id=row.id, text=f"action {k}", created_at=T0))
    clock.advance(600)
    incidents.cause(row.id, "a CI robot lists all pods every second", actor="alice")
    return row.id


def best_of(repeat: int, fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Best wall time and best CPU time of this process (the machine may be shared: CPU time is steadier)."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def whole_process(url: str, incident_id: int, repeat: int, tmp: Path) -> dict[str, float]:
    """Median wall time of ``incident-bot export`` run as a new process, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_BOT_")}
    env["INCIDENT_BOT_DATABASE_URL"] = url
    times: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
    for _ in range(repeat):
        for fmt in FORMATS:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bot.compose.cli.main", "export", f"INC-{incident_id}", "--format", fmt,
                            "-o", str(tmp / f"out.{fmt}")], env=env, check=True, capture_output=True,
                           cwd=Path(__file__).resolve().parents[1])
            times[fmt].append(time.perf_counter() - start)
    return {fmt: statistics.median(values) for fmt, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary directory")
    parser.add_argument("--process-repeat", type=int, default=5, help="whole `incident-bot export` processes per cell")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(environ={})
        settings.database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
        db = Database(settings.database_url)
        migrate.upgrade(db)
        clock = FakeClock(T0)
        incidents = Incidents(db, settings, clock)
        results: dict[int, dict[str, tuple[float, float]]] = {}
        sizes_bytes: dict[int, dict[str, int]] = {}
        ids: dict[int, int] = {}
        for n in sizes:
            clock.set(T0)
            incident_id = ids[n] = build_incident(db, incidents, clock, n)
            results[n], sizes_bytes[n] = {}, {}
            for fmt in FORMATS:
                out = export_incident(db, settings, incident_id, fmt=fmt)  # warm-up (templates compiled once)
                sizes_bytes[n][fmt] = len(out.content.encode())
                results[n][fmt] = best_of(args.repeat, lambda: export_incident(db, settings, incident_id, fmt=fmt))
        db.dispose()
        whole = {n: whole_process(settings.database_url, ids[n], args.process_repeat, Path(tmp)) for n in sizes}
    print(f"post-mortem export, best of {args.repeat}, {settings.database_url.split(':')[0]}; "
          f"wall seconds (CPU seconds of this process), microseconds of CPU per event, output MB")
    print(f"{'events':>8} " + " ".join(f"{fmt:>24}" for fmt in FORMATS))
    for n in sizes:
        cells = []
        for fmt in FORMATS:
            wall, cpu = results[n][fmt]
            cells.append(f"{wall:6.3f}s ({cpu:6.3f}s) {cpu / n * 1e6:5.1f}µs {sizes_bytes[n][fmt] / 1e6:5.2f}MB")
        print(f"{n:>8} " + " ".join(f"{c:>24}" for c in cells))
    print(f"whole `incident-bot export` process, median of {args.process_repeat} (formats alternated): " + "; ".join(
        f"{n} events " + ", ".join(f"{fmt} {whole[n][fmt]:.2f}s" for fmt in FORMATS) for n in sizes))
    for a, b in zip(sizes, sizes[1:]):
        ratios = ", ".join(f"{fmt} {results[b][fmt][0] / results[a][fmt][0]:.2f} "
                           f"(CPU {results[b][fmt][1] / results[a][fmt][1]:.2f})" for fmt in FORMATS)
        print(f"time ratio {b}/{a} (events x{b / a:g}): {ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
