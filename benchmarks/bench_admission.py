"""Admission reviews against ``incident-bot serve``: p99 per review at 200 reviews/s, and with the database hung.

The goal (issue 18): the guard never slows the apiserver: p99 <= 10 ms per AdmissionReview at 200
reviews/s, and when the bot's database is slow or down it answers allow within its timeout and
counts it. ``serve`` runs as its own process, as an operator starts it (all workers, PostgreSQL,
the guard's TLS listener requiring a client certificate, as the sandbox's apiservers present
one). The load generator is ``admission_load/`` in Go, as the kube-apiserver is (``--client
python`` for httpx threads, whose own pauses show in every figure): an open loop sending each
review at its scheduled instant (i/200 s) from 8 keep-alive connections, so a slow answer cannot
hide the ones queued behind it (latency = answer - scheduled instant). The mix is what an
apiserver sends: Pod deletes by many users (the breaker counts them), Namespace deletes (the risk
list: denied while the sev1 declared first is open), ConfigMap writes (outside the lists).

The baseline is ``noop_admission.py``: the same stack (Starlette, uvicorn, TLS with client
certificates) parsing each review and allowing it. Rounds alternate the baseline and each mode of
``serve`` named in ``--modes``: ``process`` (``guard.own_process``, the default: the webhook in
its own child process) and ``thread`` (the webhook in threads of ``serve``). Every target runs
throughout, so each shares the machine with the others; measure one mode against the baseline
(``--modes process``) for the figure, both to see the difference.

Then every PostgreSQL process is stopped (SIGSTOP: connections hang, the worst kind of down) for
``db hung`` (20 s) against the first mode, then resumed; the counters are read from ``/metrics``.
Run: ``.venv/bin/python benchmarks/bench_admission.py --modes process`` (about 3 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datetime import UTC

from benchmarks.processes import (
    CLI,
    ROOT,
    bot_env,
    describe,
    free_port,
    migrate,
    pct,
    postgres,
    process_cpu,
    start_bot,
    Server,
)
from bot.compose.sandbox.pki import issue_certificate, make_pki, sandbox_users

CLUSTER = "bench"
KINDS = ("pod",) * 6 + ("namespace",) * 2 + ("configmap",) * 2  # review i's kind is KINDS[i % 10]


def review(i: int) -> bytes:
    kind = i % 10
    if kind < 6:  # Pod deletes by 500 users: counted by the breaker, none past its threshold
        op, group, resource, ns, name, user = "DELETE", "", "pods", "batch", f"p-{i}", f"user-{i % 500}"
    elif kind < 8:
        op, group, resource, ns, name, user = "DELETE", "", "namespaces", "", f"ns-{i}", "alice"
    else:
        op, group, resource, ns, name, user = "CREATE", "", "configmaps", "apps", f"cm-{i}", "ci"
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "operation": op, "name": name, "namespace": ns,
        "resource": {"group": group, "version": "v1", "resource": resource},
        "userInfo": {"username": user, "groups": ["system:authenticated"]}}}).encode()


def load(url: str, context: ssl.SSLContext, rate: float, seconds: float, connections: int = 8) -> dict:
    """Open loop: review i is due at start + i/rate; answers are timed from that instant."""
    total = int(rate * seconds)
    bodies = [review(i) for i in range(total)]
    due: queue.Queue[int | None] = queue.Queue()
    latencies: list[float] = []
    service: list[float] = []
    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    start = time.perf_counter() + 0.5

    def worker() -> None:
        with httpx.Client(verify=context, trust_env=False, timeout=10.0) as client:
            while (i := due.get()) is not None:
                sent = time.perf_counter()
                try:
                    answer = client.post(url, content=bodies[i], headers={"Content-Type": "application/json"})
                    key = ("allowed" if answer.json()["response"]["allowed"] else "denied") \
                        if answer.status_code == 200 else f"http {answer.status_code}"
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                done = time.perf_counter()
                with lock:
                    latencies.append((done - (start + i / rate)) * 1000)
                    service.append((done - sent) * 1000)
                    label = f"{KINDS[i % 10]} {key}"
                    outcomes[label] = outcomes.get(label, 0) + 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        due.put(i)
    for _ in threads:
        due.put(None)
    for t in threads:
        t.join()
    return {"latency_ms": latencies, "service_ms": service, "outcomes": dict(sorted(outcomes.items()))}


GO_CLIENT_SOURCE = Path(__file__).with_name("admission_load")
GO_CLIENT = Path(os.environ.get("INCIDENT_BOT_CACHE", Path.home() / ".cache" / "incident-bot")) / "bin" / "admission-load"


def go_client() -> Path:
    """The Go load generator (the apiserver's side, in the apiserver's language), built once into the cache."""
    newest = max(f.stat().st_mtime for f in GO_CLIENT_SOURCE.iterdir())
    if not GO_CLIENT.exists() or GO_CLIENT.stat().st_mtime < newest:
        GO_CLIENT.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "build", "-o", str(GO_CLIENT), "."], cwd=GO_CLIENT_SOURCE, check=True)
    return GO_CLIENT


def go_load(url: str, tls: tuple[Path, Path, Path], rate: float, seconds: float, connections: int = 8) -> dict:
    """``load`` with the Go client: the same open loop, reviews and outcomes, without Python's pauses."""
    ca, cert, key = tls
    total = int(rate * seconds)
    bodies = b"".join(review(i) + b"\n" for i in range(total))
    done = subprocess.run([str(go_client()), "-url", url, "-ca", str(ca), "-cert", str(cert), "-key", str(key),
                           "-rate", str(rate), "-seconds", str(seconds), "-connections", str(connections)],
                          input=bodies, capture_output=True, check=True)
    latencies: list[float] = []
    service: list[float] = []
    outcomes: dict[str, int] = {}
    for i, line in enumerate(done.stdout.decode().splitlines()):
        latency, spent, status, allowed = line.split()
        latencies.append(float(latency))
        service.append(float(spent))
        key_ = ("allowed" if allowed == "true" else "denied") if status == "200" else f"http {status}"
        label = f"{KINDS[i % 10]} {key_}"
        outcomes[label] = outcomes.get(label, 0) + 1
    return {"latency_ms": latencies, "service_ms": service, "outcomes": dict(sorted(outcomes.items()))}


def decision_cost(n: int = 20000) -> float:
    """CPU microseconds per review of the guard's own work (parse, decide, answer), in this process."""
    from datetime import datetime

    from bot.core.clock import FakeClock
    from bot.core.config.guard import GuardSettings
    from bot.domain.guard.decide import Guard
    from bot.domain.guard.review import answer, parse_review
    from bot.domain.guard.state import GuardState, OpenIncident

    clock = FakeClock(datetime(2026, 11, 30, tzinfo=UTC))
    guard = Guard(GuardSettings(enabled=True, breaker={"cluster_wide": 10**9}), clock)
    guard.use_state(GuardState(clock.now(), incidents={CLUSTER: (OpenIncident(1, "sev1", "etcd latency"),)}))
    bodies = [review(i) for i in range(n)]
    began = time.process_time()
    for body in bodies:
        request = parse_review(body)
        decision = guard.decide(CLUSTER, request)
        json.dumps(answer(request.uid, decision.allowed, decision.message))
    return (time.process_time() - began) / n * 1e6


def postgres_pids(data_dir: Path) -> list[int]:
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{postmaster}\n" in status:
                children.append(int(entry.name))
    return [postmaster, *children]


def child_pids(pid: int) -> list[int]:
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


def start_noop_admission(work: Path, cert: Path, key: Path, ca: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("noop_admission.py")), str(port),
                                str(cert), str(key), str(ca)], stdout=(work / "noop.log").open("wb"),
                               stderr=subprocess.STDOUT)
    return process, port


def wait_answering(url: str, context: ssl.SSLContext, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with httpx.Client(verify=context, trust_env=False, timeout=2.0) as client:
                if client.post(url, content=review(9), headers={"Content-Type": "application/json"}).status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0, help="per round and target")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hung-seconds", type=float, default=20.0)
    parser.add_argument("--client", choices=["go", "python"], default="go",
                        help="the load generator: go (as the apiserver; default) or python (httpx threads)")
    parser.add_argument("--modes", default="process,thread",
                        help="serve's guard modes to measure: process (guard.own_process, the default), thread")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    print(f"the guard's own work (parse, decide, answer JSON) in one process: {decision_cost():.0f} us CPU per review")
    print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(the figures below include whatever else the machine runs)")
    work = Path(tempfile.mkdtemp(prefix="bench-admission-"))
    pki = make_pki(work / "pki", sandbox_users())
    cert, key = issue_certificate(pki, work / "guard", "incident-bot-webhook")
    client_cert, client_key = issue_certificate(pki, work / "guard", "kube-apiserver", client=True)
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(client_cert), str(client_key))
    tls = (pki.ca_cert, client_cert, client_key)

    def run_load(url: str, seconds: float) -> dict:
        if args.client == "go":
            return go_load(url, tls, args.rate, seconds)
        return load(url, context, args.rate, seconds)

    noop, noop_port = start_noop_admission(work, cert, key, pki.ca_cert)
    urls = {"no-op": f"https://127.0.0.1:{noop_port}/admission/{CLUSTER}"}
    servers: dict[str, Server] = {}
    with postgres() as pg:
        database = pg.database("bench_admission")
        migrate(database)
        declared = subprocess.run([*CLI, "console"], input="/incident declare etcd latency --severity sev1\n",
                                  env=bot_env(database, {"INCIDENT_BOT_DEFAULT_CLUSTER": CLUSTER}),
                                  capture_output=True, text=True, cwd=ROOT, check=True)
        print("console:", declared.stdout.strip().splitlines()[0] if declared.stdout.strip() else declared.stderr[-300:])
        try:
            for mode in modes:
                port = free_port()
                servers[mode] = start_bot(f"serve-{mode}", database, work, {
                    "INCIDENT_BOT_DEFAULT_CLUSTER": CLUSTER, "INCIDENT_BOT_GUARD__ENABLED": "true",
                    "INCIDENT_BOT_GUARD__OWN_PROCESS": str(mode == "process").lower(),
                    "INCIDENT_BOT_GUARD__PORT": str(port), "INCIDENT_BOT_GUARD__TLS_CERT_PATH": str(cert),
                    "INCIDENT_BOT_GUARD__TLS_KEY_PATH": str(key), "INCIDENT_BOT_GUARD__CLIENT_CA_PATH": str(pki.ca_cert),
                    "INCIDENT_BOT_GUARD__BREAKER__CLUSTER_WIDE": "1000000"})
                urls[f"serve ({mode})"] = f"https://127.0.0.1:{port}/admission/{CLUSTER}"
            for url in urls.values():
                wait_answering(url, context)
            time.sleep(2)  # the guards' first read of their state (refresh_seconds 1)
            print(f"{args.rate:.0f} reviews/s from 8 connections ({args.client} client), open loop; {args.rounds} rounds of "
                  f"{args.seconds:.0f} s per target, alternated: " + ", ".join(urls))
            results: dict[str, list[dict]] = {name: [] for name in urls}
            for _ in range(args.rounds):
                for name, url in urls.items():
                    results[name].append(run_load(url, args.seconds))
            p99s: dict[str, float] = {}
            for name, runs in results.items():
                pooled = [x for r in runs for x in r["latency_ms"]]
                p99s[name] = pct(pooled, 99)
                print(describe(f"{name:15s} answer - scheduled", pooled)
                      + "   p99 per round: " + ", ".join(f"{pct(r['latency_ms'], 99):.1f}" for r in runs))
                outcomes: dict[str, int] = {}
                for r in runs:
                    for k, v in r["outcomes"].items():
                        outcomes[k] = outcomes.get(k, 0) + v
                print(f"{'':15s} outcomes: {dict(sorted(outcomes.items()))}")
            for mode in modes:
                print(f"serve ({mode}) p99 minus the no-op's: {p99s[f'serve ({mode})'] - p99s['no-op']:+.1f} ms")
            hung_mode = modes[0]
            pids = postgres_pids(pg.server.directory / "data")
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            try:
                hung = run_load(urls[f"serve ({hung_mode})"], args.hung_seconds)
            finally:
                for pid in pids:
                    os.kill(pid, signal.SIGCONT)
            print(describe(f"db hung {args.hung_seconds:.0f}s, serve ({hung_mode})", hung["latency_ms"]))
            print("                 outcomes:", hung["outcomes"])
            time.sleep(2)
            for mode, server in servers.items():
                metrics = httpx.get(server.url + "/metrics", timeout=30).text
                print(f"serve ({mode}) /metrics:")
                print("\n".join("  " + line for line in metrics.splitlines()
                                if line.startswith(("incident_bot_guard_decisions_total", "incident_bot_guard_process"))))
                children = child_pids(server.process.pid)
                cpu = server.cpu_seconds() + sum(process_cpu(c) for c in children)
                print(f"serve ({mode}) CPU over the run, its guard process included: {cpu:.1f} s")
            verdict = "met" if p99s[f"serve ({modes[0]})"] <= 10 and pct(hung["latency_ms"], 99) <= 10 else "missed"
            print(f"p99 goal 10 ms, serve ({modes[0]}): {verdict} "
                  f"(db up {p99s[f'serve ({modes[0]})']:.1f} ms, db hung {pct(hung['latency_ms'], 99):.1f} ms)")
        finally:
            for server in servers.values():
                server.stop()
            noop.terminate()
            noop.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
