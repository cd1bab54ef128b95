#!/usr/bin/env python3
"""Alertmanager webhook ingest against the framework's floor: ``serve`` vs a no-op endpoint.

Both servers are separate processes on the same stack (Starlette under
uvicorn, the same options): ``incident-bot serve`` with all its workers, and
``noop_server.py`` whose endpoint reads the body and answers.  The same
client (keep-alive connections, one thread each) posts Alertmanager v4
deliveries of ``--size`` *new* alerts (every alert a new instance, so the bot
really stores them) that all join one incident, which already holds
``--preload`` alerts: the cost must not grow with the incident.

Throughput is what a server answers when it is kept busy, so each
configuration is measured at several client concurrencies (``--connections``):
Alertmanager sends every group's notification on its own, and a storm flushes
dozens of groups at once.  At each concurrency rounds alternate (no-op, bot,
no-op, bot, ...) so a neighbour's load on this shared machine hits both alike;
each reports the median requests/s of its rounds, the server CPU per request
(from /proc) and the ratio bot / no-op at that concurrency.  The verdict
compares the two throughputs, each server at its best concurrency (the no-op
peaks where the client saturates, the bot where its batches fill): goal
>= 0.5 on SQLite and PostgreSQL, 1 and 20 alerts.  The ratio at the lowest
concurrency is printed beside it: there a delivery waits for its own commit,
and it shows what a lone delivery costs.

PostgreSQL runs with its durable defaults (``benchmarks/processes.py``).

    .venv/bin/python benchmarks/bench_ingest.py [--stores sqlite,postgres] [--sizes 1,20]
        [--connections 4,16,64] [--rounds 3] [--seconds 5] [--preload 10000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from processes import HEADERS, Server, median, migrate, postgres, start_bot, start_noop  # noqa: E402

START = datetime.now(timezone.utc) - timedelta(minutes=1)
GOAL = 0.5  # bot / no-op requests per second (issue 15)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Deliveries:
    """Alertmanager deliveries of fresh alerts of one group (they all join one incident)."""

    def __init__(self) -> None:
        self._next = itertools.count()

    def body(self, size: int) -> bytes:
        alerts = []
        for _ in range(size):
            n = next(self._next)
            labels = {"alertname": "KubeNodeNotReady", "severity": "warning", "cluster": "bench",
                      "component": "kubelet", "node": f"node-{n:07d}", "instance": f"node-{n:07d}"}
            alerts.append({"status": "firing", "labels": labels, "annotations": {"summary": f"node-{n:07d} not ready"},
                           "startsAt": iso(START), "endsAt": "0001-01-01T00:00:00Z",
                           "generatorURL": "http://prometheus:9090/graph", "fingerprint": f"{n:016x}"})
        return json.dumps({"receiver": "incident-bot", "status": "firing", "alerts": alerts,
                           "groupLabels": {"alertname": "KubeNodeNotReady"}, "commonLabels": {},
                           "commonAnnotations": {}, "externalURL": "http://am:9093", "version": "4",
                           "groupKey": '{}:{alertname="KubeNodeNotReady"}', "truncatedAlerts": 0}).encode()


def load(server: Server, deliveries: Deliveries, size: int, seconds: float, connections: int) -> dict[str, float]:
    """``connections`` clients post as fast as answers come for ``seconds``; requests/s and CPU/request."""
    done = [0] * connections
    errors: list[str] = []
    stop = threading.Event()

    def client(index: int) -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                response = http.post(server.url + "/webhooks/alertmanager", content=deliveries.body(size),
                                     headers=HEADERS)
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                    stop.set()
                done[index] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(connections)]
    cpu0, t0 = server.cpu_seconds(), time.monotonic()
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(60)
    elapsed, cpu = time.monotonic() - t0, server.cpu_seconds() - cpu0
    if errors:
        raise RuntimeError(f"{server.name}: {errors[0]}")
    total = sum(done)
    return {"rps": total / elapsed, "cpu_ms": 1000 * cpu / max(total, 1), "requests": total}


def preload(server: Server, deliveries: Deliveries, alerts: int) -> None:
    with httpx.Client(timeout=120) as http:
        for _ in range(0, alerts, 500):
            response = http.post(server.url + "/webhooks/alertmanager", content=deliveries.body(500), headers=HEADERS)
            response.raise_for_status()


def measure(store: str, url: str, workdir: Path, args: argparse.Namespace, size: int) -> dict[str, Any]:
    """Per concurrency: each server's median requests/s and CPU per request, and their ratio."""
    migrate(url)
    bot = start_bot(f"bot-{store}-{size}", url, workdir)
    noop = start_noop(workdir)
    by_connections: dict[int, dict[str, Any]] = {}
    try:
        deliveries = Deliveries()
        preload(bot, deliveries, args.preload)
        time.sleep(2)  # the announcement, page and diagnosis of the new incident happen now, not in round 1
        for connections in args.connections:
            rounds: dict[str, list[dict[str, float]]] = {"no-op": [], "bot": []}
            for _ in range(args.rounds):
                for name, server in (("no-op", noop), ("bot", bot)):
                    rounds[name].append(load(server, deliveries, size, args.seconds, connections))
            out: dict[str, Any] = {name: {"rps": median([r["rps"] for r in rs]),
                                          "cpu_ms": median([r["cpu_ms"] for r in rs]),
                                          "rounds": [round(r["rps"]) for r in rs]} for name, rs in rounds.items()}
            out["ratio"] = out["bot"]["rps"] / out["no-op"]["rps"]
            by_connections[connections] = out
    finally:
        bot.stop()
        noop.stop()
    return by_connections


def peak(by_connections: dict[int, dict[str, Any]], name: str) -> tuple[float, int]:
    """A server's best median requests/s over the concurrencies, and where."""
    connections = max(by_connections, key=lambda c: by_connections[c][name]["rps"])
    return by_connections[connections][name]["rps"], connections


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--sizes", default="1,20", help="alerts per delivery")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="per round")
    parser.add_argument("--connections", default="4,16,64", help="client concurrencies to measure at")
    parser.add_argument("--preload", type=int, default=10_000, help="alerts already in the incident")
    args = parser.parse_args(argv)
    args.connections = [int(c) for c in args.connections.split(",")]
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"# {args.rounds} alternated rounds of {args.seconds:g} s at each of {args.connections} connections, "
          f"incident preloaded with {args.preload} alerts")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as d:
        workdir = Path(d)
        verdicts: list[tuple[str, int, float]] = []
        pg_context = postgres() if "postgres" in stores else None
        pg = pg_context.__enter__() if pg_context else None
        try:
            for store in stores:
                for size in sizes:
                    url = (f"sqlite:///{workdir / f'ingest-{size}.db'}" if store == "sqlite"
                           else pg.database(f"ingest_{size}"))  # type: ignore[union-attr]
                    by_connections = measure(store, url, workdir, args, size)
                    for connections, r in by_connections.items():
                        print(f"{store:<9} {size:>2} alert(s)/delivery, {connections:>3} connections: "
                              f"bot {r['bot']['rps']:7.1f} req/s ({r['bot']['cpu_ms']:.2f} ms CPU/req, rounds "
                              f"{r['bot']['rounds']})  no-op {r['no-op']['rps']:7.1f} req/s ({r['no-op']['cpu_ms']:.2f} "
                              f"ms CPU/req, rounds {r['no-op']['rounds']})  ratio {r['ratio']:.2f}  "
                              f"load {os.getloadavg()[0]:.1f}", flush=True)
                    (bot_peak, bot_at), (noop_peak, noop_at) = peak(by_connections, "bot"), peak(by_connections, "no-op")
                    lowest = min(by_connections)
                    verdicts.append((store, size, bot_peak / noop_peak))
                    print(f"{store:<9} {size:>2} alert(s)/delivery: throughput bot {bot_peak:.0f} req/s (at {bot_at}) / "
                          f"no-op {noop_peak:.0f} req/s (at {noop_at}) = {bot_peak / noop_peak:.2f}; at {lowest} "
                          f"connections {by_connections[lowest]['ratio']:.2f}", flush=True)
        finally:
            if pg_context:
                pg_context.__exit__(None, None, None)
    worst = min(ratio for _, _, ratio in verdicts)
    missed = [f"{store} {size}" for store, size, ratio in verdicts if ratio < GOAL]
    print(f"worst throughput ratio {worst:.2f}: goal (>= {GOAL}) "
          + ("met" if not missed else f"NOT met ({', '.join(missed)})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
