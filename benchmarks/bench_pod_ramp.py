#!/usr/bin/env python3
"""Load test with an SLO-aware report: ramp pod creation against the sandbox's customer cluster.

Starts a sandbox control plane with the customer cluster (real kube-scheduler,
kube-controller-manager and ``--nodes`` kwok hollow nodes), then creates pods at rising rates
(``--rates``, pods per second, ``--seconds`` each), each from its own thread like independent
customers, and times every pod's stages: API accept (the create answered), scheduled
(``spec.nodeName`` seen), running (Ready). A pod meets the SLO when it runs within
``--slo-seconds`` (the bot's ``probes.slow_seconds.pod``); the report says per stage of the ramp
the latency percentiles, the share meeting the SLO, and the first rate where the share falls
under the objective (99 %). While the ramp runs the bot's own pod probe runs beside it every
``--probe-interval`` seconds as the prober would, so the report also says when the prober saw
the miss (its first slow or failed probe after the SLO was first missed) and what share of the
apiservers' requests the probes made. The prober runs every customer probe the bot runs (pod,
StatefulSet, node readiness) through a client that counts each request it sends; the share is
that count over the main apiservers' ``apiserver_request_total`` growth in the same period, both
in a quiet phase (``--quiet-seconds``, probes only: the worst case for the share) and during the
ramp.

    .venv/bin/python benchmarks/bench_pod_ramp.py --nodes 20 --rates 1,2,5,10 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.compose.sandbox.controlplane import ControlPlane, ControlPlaneOptions  # noqa: E402
from bot.compose.sandbox.customers import CustomerOptions  # noqa: E402
from integrations.clients.kubernetes import connect  # noqa: E402
from integrations.clients.probes.customer import (delete_now, nodes_check, pod_manifest, run_pod_probe,  # noqa: E402
                                           run_statefulset_probe)

NAMESPACE = "ramp"
OBJECTIVE = 0.99


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 1)


def one_pod(admin: Any, deadline: float) -> dict[str, Any]:
    """Create a pod, watch its stages by polling, delete it: seconds to each stage (None: not reached)."""
    name = f"ramp-{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    out: dict[str, Any] = {"accepted": None, "scheduled": None, "running": None}
    try:
        admin.create_object(pod_manifest(NAMESPACE, name))
        out["accepted"] = time.monotonic() - began
        while time.monotonic() - began < deadline:
            pod = admin.get_object("v1", "Pod", name, NAMESPACE) or {}
            if out["scheduled"] is None and (pod.get("spec") or {}).get("nodeName"):
                out["scheduled"] = time.monotonic() - began
            status = pod.get("status") or {}
            if status.get("phase") == "Running":
                out["running"] = time.monotonic() - began
                break
            time.sleep(0.1)
    except Exception as exc:  # an error is an outcome of the load test
        out["error"] = str(exc)[:200]
    finally:
        try:
            delete_now(admin, f"/api/v1/namespaces/{NAMESPACE}/pods/{name}", f"delete Pod {name}")
        except Exception:
            pass
    return out


class CountingClient:
    """The bot's client, counting every request it sends to the apiserver (a watch is one request)."""

    COUNTED = ("request", "create_object", "get_object", "list_objects", "watch", "raw_get")

    def __init__(self, client: Any) -> None:
        self._client = client
        self.sent = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in self.COUNTED:
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.sent += 1
            return attr(*args, **kwargs)
        return counted


def requests_total(plane: ControlPlane) -> float:
    total = 0.0
    for server in plane.main.values():
        with server.client() as c:
            for line in c.get("/metrics").text.splitlines():
                if line.startswith("apiserver_request_total{"):
                    total += float(line.rsplit(" ", 1)[1])
    return total


def _cpu_rss(pid: int) -> tuple[float, int]:
    """CPU seconds used so far and resident MiB of one process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return ticks / 100.0, rss // 1024


def costs(plane: ControlPlane, seconds: float) -> dict[str, Any]:
    """CPU share and memory of the customer cluster's processes and the apiservers over ``seconds`` of idling."""
    assert plane.customers is not None
    pids = {n: plane.customers.components[n].pid for n in plane.customers.components.names()}
    pids.update({f"kube-apiserver {n}": s.pid for n, s in plane.apiservers.items()})
    first = {n: _cpu_rss(p) for n, p in pids.items() if p}
    time.sleep(seconds)  # a measurement period
    last = {n: _cpu_rss(p) for n, p in pids.items() if p}
    return {n: {"cpu_percent": round((last[n][0] - first[n][0]) / seconds * 100, 1), "rss_mib": last[n][1]}
            for n in last}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--rates", default="1,2,5,10,20")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--slo-seconds", type=float, default=5.0)
    parser.add_argument("--probe-interval", type=float, default=10.0)
    parser.add_argument("--quiet-seconds", type=float, default=60.0, help="probes only, before the ramp")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    root = Path(tempfile.mkdtemp(prefix="ib-ramp-"))
    started = time.monotonic()
    plane = ControlPlane(root, webhook_url="http://127.0.0.1:9/unused", webhook_token="unused",
                         options=ControlPlaneOptions(customers=True, customer=CustomerOptions(nodes=args.nodes)))
    report: dict[str, Any] = {"nodes": args.nodes, "slo_seconds": args.slo_seconds, "objective": OBJECTIVE, "stages": []}
    try:
        plane.start()
        report["sandbox_start_seconds"] = round(time.monotonic() - started, 1)
        admin = plane.admin()
        admin.create_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}, exist_ok=True)
        bot = CountingClient(connect(str(plane.kubeconfig)))
        probes: list[dict[str, Any]] = []
        stop = threading.Event()

        def prober() -> None:  # what the bot's customer prober does every interval
            while not stop.is_set():
                at = time.monotonic()
                try:
                    stages = run_pod_probe(bot, "incident-bot-probe", deadline_seconds=args.slo_seconds)
                    probes.append({"at": at, "ok": True, "seconds": stages.running, "slow": False})
                except Exception as exc:
                    probes.append({"at": at, "ok": False, "detail": str(exc)[:160]})
                for other in (lambda: run_statefulset_probe(bot, "incident-bot-probe", replicas=2,
                                                            deadline_seconds=args.slo_seconds * 3),
                              nodes_check("sandbox", bot).run):
                    try:
                        other()
                    except Exception:  # their failures are not this benchmark's subject
                        pass
                stop.wait(args.probe_interval)

        report["idle_costs"] = costs(plane, 20.0)
        before = requests_total(plane)
        probe_thread = threading.Thread(target=prober, daemon=True)
        probe_thread.start()
        if args.quiet_seconds > 0:
            time.sleep(args.quiet_seconds)  # a measurement period: probes only
            quiet = requests_total(plane) - before
            report["quiet"] = {"seconds": args.quiet_seconds, "apiserver_requests": quiet,
                               "apiserver_requests_per_second": round(quiet / args.quiet_seconds, 1),
                               "probe_requests": bot.sent,
                               "probe_share_of_requests": round(bot.sent / max(1.0, quiet), 4)}
            print(json.dumps({"quiet": report["quiet"]}), flush=True)
        ramp_before, ramp_sent = requests_total(plane), bot.sent
        first_miss: float | None = None
        with ThreadPoolExecutor(max_workers=64) as pool:
            for rate in rates:
                stage_began = time.monotonic()
                futures = []
                for i in range(int(rate * args.seconds)):
                    due = stage_began + i / rate
                    time.sleep(max(0.0, due - time.monotonic()))
                    futures.append(pool.submit(one_pod, admin, args.slo_seconds * 3))
                results = [f.result() for f in futures]
                ok = [r for r in results if r["running"] is not None and r["running"] <= args.slo_seconds]
                share = len(ok) / len(results) if results else 1.0
                stage = {"rate_per_second": rate, "pods": len(results), "met_slo": round(share, 4),
                         "errors": sum(1 for r in results if "error" in r)}
                for key in ("accepted", "scheduled", "running"):
                    values = [r[key] for r in results if r[key] is not None]
                    stage[f"{key}_p50_ms"] = percentile(values, 0.5)
                    stage[f"{key}_p99_ms"] = percentile(values, 0.99)
                report["stages"].append(stage)
                print(json.dumps(stage), flush=True)
                if share < OBJECTIVE and first_miss is None:
                    first_miss = stage_began
                    report["first_missed_at_rate"] = rate
        stop.set()
        probe_thread.join(args.slo_seconds * 2 + 5)
        after = requests_total(plane)
        report["ramp_apiserver_requests"] = after - ramp_before
        report["ramp_probe_requests"] = bot.sent - ramp_sent
        report["ramp_probe_share_of_requests"] = round((bot.sent - ramp_sent) / max(1.0, after - ramp_before), 4)
        if first_miss is not None:
            seen = next((p for p in probes if p["at"] >= first_miss and (not p["ok"] or p["seconds"] > args.slo_seconds)), None)
            report["prober_saw_miss_after_seconds"] = round(seen["at"] - first_miss, 1) if seen else None
        admin.close()
        bot.close()
    finally:
        plane.close()
    print(json.dumps({k: v for k, v in report.items() if k != "stages"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
