#!/usr/bin/env python3
"""Alert storm benchmark: the bot served as ``serve`` runs it (uvicorn + workers, SQLite WAL).

Two measurements (not part of the test run; takes about 1.5 minutes):

1. **Quiet**: one webhook at a time, each opening a new incident; the bot's own
   time from *webhook received* (first byte at the ASGI app) to *announce card
   delivered* (the chat deliverer called; a recording deliverer stands in for
   Slack, as tests do).  Target: p99 < 100 ms.

2. **Storm**: 10,000 alerts within one minute (default) over ~50 alert groups
   of two clusters: etcd and apiserver failing first, then thousands of nodes,
   kubelets, DNS and kube-proxy pods.  Deliveries are shaped like
   Alertmanager's (group_by cluster/component/alertname, every group re-sent
   with *all* its alerts every ``--group-interval`` seconds, 4 concurrent
   connections).  Meanwhile "people" keep asking: ``GET /api/incidents``
   over HTTP and ``/incident status INC-1`` through the chat dispatcher (the
   code path a slash command runs after Slack's signature check).  Reports:
   alerts stored vs sent, incidents opened, chat messages delivered by kind,
   webhook latency, and command latency percentiles (target p99 < 300 ms).

    .venv/bin/python benchmarks/bench_alert_storm.py [--alerts 10000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.compose.app.bot import build_bot  # noqa: E402
from bot.chat.dispatcher import ChatContext  # noqa: E402
from bot.core.config import Settings, load_settings  # noqa: E402
from bot.core.store.models import Alert, Incident  # noqa: E402
from tests.detect.serving import BotServer  # noqa: E402
from tests.support import slack_signing  # noqa: E402
from tests.support.fake_slack import FakeSlack  # noqa: E402

TOKEN = "bench-token"
SLACK_USERS = {"alice": "U0ALICE", "bob": "U0BOB", "carol": "U0CAROL"}
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


# --------------------------------------------------------------------------- helpers

def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def summary(name: str, values_ms: list[float]) -> str:
    return (f"{name}: n={len(values_ms)} p50={pct(values_ms, 50):.1f} ms p95={pct(values_ms, 95):.1f} ms "
            f"p99={pct(values_ms, 99):.1f} ms max={max(values_ms):.1f} ms mean={statistics.fmean(values_ms):.1f} ms")


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_alert(name: str, starts: datetime, severity: str, **labels: str) -> dict[str, Any]:
    all_labels = {"alertname": name, "severity": severity, **labels}
    fp = hashlib.sha256(json.dumps(all_labels, sort_keys=True).encode()).hexdigest()[:16]
    return {"status": "firing", "labels": all_labels,
            "annotations": {"summary": f"{name} on {labels.get('instance', '?')}"},
            "startsAt": iso(starts), "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": fp}


def payload(alerts: list[dict[str, Any]], group: str) -> dict[str, Any]:
    return {"receiver": "incident-bot", "status": "firing", "alerts": alerts, "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093", "version": "4",
            "groupKey": group, "truncatedAlerts": 0}


def bench_settings(tmp: Path, name: str, fake: FakeSlack | None = None) -> Settings:
    settings = load_settings(environ={})
    settings.database_url = f"sqlite:///{tmp / (name + '.db')}"
    settings.oncall.rota = ["alice", "bob", "carol"]
    settings.webhook_token = SecretStr(TOKEN)
    settings.outbox_interval_seconds = 0.5
    if fake is not None:  # the real Slack adapter against a loopback fake of the Web API
        settings.slack.bot_token = SecretStr("xoxb-0000-bench-token")
        settings.slack.signing_secret = SecretStr(slack_signing.SECRET)
        settings.slack.api_url = fake.api_url
        settings.slack.users = dict(SLACK_USERS)
        settings.slack.request_timeout_seconds = 5
    return settings


def timed_fake_slack() -> FakeSlack:
    """The fake Slack Web API, each recorded call stamped with the time it arrived."""
    fake = FakeSlack()
    original = fake._record

    def record(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        with fake._lock:
            for call in reversed(fake.calls):
                if "at" in call:
                    break
                call["at"] = time.time()

    fake._record = record  # type: ignore[method-assign]
    return fake.start()


def bot_for(tmp: Path, name: str, slack: bool) -> tuple[Any, FakeSlack | None]:
    fake = timed_fake_slack() if slack else None
    extensions = ["bot.compose.app.webhooks"] + (["integrations.adapters.slack.extension"] if slack else [])
    return build_bot(bench_settings(tmp, name, fake), extensions=extensions), fake


class ReceiveTimes:
    """ASGI wrapper noting when each webhook request reached the app (in request order)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/webhooks/alertmanager":
            self.times.append(time.time())
        await self.app(scope, receive, send)


# --------------------------------------------------------------------------- 1. quiet

def quiet(tmp: Path, n: int, slack: bool) -> dict[str, Any]:
    bot, fake = bot_for(tmp, "quiet-slack" if slack else "quiet", slack)
    timer: list[ReceiveTimes] = []
    server = BotServer(bot, wrap=lambda app: timer.append(ReceiveTimes(app)) or timer[0], chat_sender=not slack).start()
    own: list[float] = []
    end_to_end: list[float] = []
    posted = 0
    try:
        with httpx.Client(timeout=10) as client:
            for i in range(n):
                body = payload([make_alert("EtcdMemberDown", datetime.now(timezone.utc) - timedelta(seconds=2),
                                           "critical", job="etcd", instance=f"10.0.{i // 250}.{i % 250}:2379",
                                           cluster=f"quiet-{i}")], f"q{i}")
                sent = time.time()
                answer = client.post(server.webhook_url, content=json.dumps(body), headers=HEADERS)
                assert answer.status_code == 200, answer.text
                incident = int(answer.json()["opened"][0].split("-")[1])
                deadline = time.time() + 5
                while True:
                    if fake is not None:  # the card: the first chat.postMessage naming the incident
                        cards = [c["at"] for c in list(fake.calls)[posted:]
                                 if c["method"] == "chat.postMessage" and "at" in c
                                 and f"INC-{incident}" in json.dumps(c["body"])]
                    else:
                        cards = [t for t, m in list(server.deliverer.delivered)
                                 if m.incident_id == incident and m.kind == "incident.card"]
                    if cards or time.time() > deadline:
                        break
                    time.sleep(0.001)
                assert cards, f"INC-{incident}: no card delivered within 5 s"
                delivered = cards[0]
                if fake is not None:
                    posted = len(fake.calls)
                own.append((delivered - timer[0].times[-1]) * 1000)
                end_to_end.append((delivered - sent) * 1000)
                # keep "quiet" quiet: one open incident at a time (the watcher evaluates every open one
                # in one transaction, so hundreds of open incidents would be a storm of their own)
                bot.services.incidents.cancel(incident, actor="bench", reason="benchmark")
                time.sleep(0.05)
    finally:
        server.stop()
        bot.close()
        if fake is not None:
            fake.stop()
    return {"own": own, "end_to_end": end_to_end}


# --------------------------------------------------------------------------- 2. storm

def storm_alerts(total: int, seconds: float, t0: datetime) -> list[tuple[float, tuple[str, str, str], dict[str, Any]]]:
    """(appears at offset s, group key, alert), the cause first, the cascade after."""
    rnd = random.Random(42)
    out: list[tuple[float, tuple[str, str, str], dict[str, Any]]] = []

    def add(offset: float, name: str, severity: str, cluster: str, component: str, **labels: str) -> None:
        alert = make_alert(name, t0 + timedelta(seconds=offset), severity, cluster=cluster, component=component, **labels)
        out.append((offset, (cluster, component, name), alert))

    for cluster, lag in (("prod-1", 0.0), ("prod-2", 20.0)):
        for m in range(3):
            for name in ("EtcdMemberDown", "EtcdNoLeader", "EtcdHighFsyncDurations", "EtcdHighCommitDurations"):
                add(lag + rnd.uniform(0, 1.5), name, "critical", cluster, "etcd", job="etcd", instance=f"etcd-{m}:2379")
        for a in range(5):
            for name in ("KubeAPIServerInstanceDown", "KubeAPIErrorRatioHigh", "KubeAPITerminatedRequests"):
                add(lag + rnd.uniform(1, 4), name, "critical", cluster, "apiserver", job="apiserver", instance=f"api-{a}:6443")
        for name in ("KubeSchedulerDown", "KubeControllerManagerDown"):
            add(lag + rnd.uniform(3, 6), name, "critical", cluster,
                "scheduler" if "Scheduler" in name else "controller-manager", job="kube-" + name[4:-4].lower())
    rest = total - len(out)
    shares = [("KubeNodeNotReady", "kubelet", 0.62), ("KubeletPlegDurationHigh", "kubelet", 0.18),
              ("CoreDNSErrorsHigh", "dns", 0.05), ("KubeProxyDown", "kube-proxy", 0.05),
              ("KubePodCrashLooping", "kubelet", 0.10)]
    made = 0
    for index, (name, component, share) in enumerate(shares):
        count = rest - made if index == len(shares) - 1 else int(rest * share)
        for i in range(count):
            cluster, start = ("prod-1", 5.0) if i % 5 else ("prod-2", 25.0)
            add(rnd.uniform(start, max(start + 1, seconds - 2)), name, "warning", cluster, component, job="kubelet" if component == "kubelet" else component,
                instance=f"node-{i:05d}", node=f"node-{i:05d}")
        made += count
    out.sort(key=lambda x: x[0])
    return out


def storm(tmp: Path, total: int, seconds: float, group_interval: float, connections: int, slack: bool) -> dict[str, Any]:
    bot, fake = bot_for(tmp, "storm", slack)
    server = BotServer(bot, chat_sender=not slack).start()
    t0 = datetime.now(timezone.utc)
    alerts = storm_alerts(total, seconds, t0)
    webhook_ms: list[float] = []
    api_ms: list[float] = []
    dispatch_ms: list[float] = []
    slash_ms: list[float] = []
    sent_payloads = 0
    sent_bytes = 0
    retries = 0
    stop = threading.Event()
    lock = threading.Lock()

    def ask_http() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                start = time.perf_counter()
                response = client.get(server.url + "/api/incidents")
                took = (time.perf_counter() - start) * 1000
                assert response.status_code == 200
                with lock:
                    api_ms.append(took)
                stop.wait(0.05)

    def ask_chat() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            reply = bot.dispatcher.handle(ChatContext(user="alice", adapter="bench"), "/incident status INC-1")
            took = (time.perf_counter() - start) * 1000
            with lock:
                dispatch_ms.append(took)
            del reply
            stop.wait(0.05)

    def ask_slack() -> None:
        assert fake is not None
        with httpx.Client(timeout=10) as client:
            n = 0
            while not stop.is_set():
                n += 1
                body, headers = slack_signing.slash_command("status INC-1", user="U0ALICE",
                                                            response_url=fake.response_url(f"bench-{n}"))
                start = time.perf_counter()
                response = client.post(server.url + "/slack/events", content=body.encode(), headers=headers)
                took = (time.perf_counter() - start) * 1000
                assert response.status_code == 200, response.text[:200]
                with lock:
                    slash_ms.append(took)
                stop.wait(0.1)

    askers = [threading.Thread(target=ask_http, daemon=True) for _ in range(2)] + \
             [threading.Thread(target=ask_chat, daemon=True)] + \
             ([threading.Thread(target=ask_slack, daemon=True) for _ in range(2)] if slack else [])
    for t in askers:
        t.start()

    def send(body: bytes, client: httpx.Client) -> None:
        nonlocal sent_payloads, sent_bytes
        nonlocal retries
        start = time.perf_counter()
        try:
            response = client.post(server.webhook_url, content=body, headers=HEADERS)
        except httpx.RemoteProtocolError:  # an idle keep-alive connection closed by the server: retry, as Alertmanager does
            with lock:
                retries += 1
            start = time.perf_counter()
            response = client.post(server.webhook_url, content=body, headers=HEADERS)
        took = (time.perf_counter() - start) * 1000
        assert response.status_code == 200, response.text[:300]
        with lock:
            webhook_ms.append(took)
            sent_payloads += 1
            sent_bytes += len(body)

    clients = [httpx.Client(timeout=60) for _ in range(connections)]
    pool = ThreadPoolExecutor(max_workers=connections)
    started = time.monotonic()
    appeared: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    next_index = 0
    tick = 0
    try:
        while next_index < len(alerts) or tick * group_interval < seconds:
            now = time.monotonic() - started
            while next_index < len(alerts) and alerts[next_index][0] <= now:
                _, key, alert = alerts[next_index]
                appeared[key].append(alert)
                next_index += 1
            futures = []
            for i, (key, group) in enumerate(sorted(appeared.items())):
                body = json.dumps(payload(list(group), "{}:" + json.dumps(key))).encode()
                futures.append(pool.submit(send, body, clients[i % connections]))
            for f in futures:
                f.result()
            tick += 1
            time.sleep(max(0.0, tick * group_interval - (time.monotonic() - started)))
        storm_seconds = time.monotonic() - started
    finally:
        pool.shutdown(wait=True)
        for c in clients:
            c.close()
    stop.set()
    for t in askers:
        t.join(10)
    deadline = time.time() + 30
    while time.time() < deadline:
        with bot.db.session() as s:
            from bot.core.store.models import OutboxMessage

            pending = s.execute(select(func.count()).select_from(OutboxMessage)
                                .where(OutboxMessage.status == "pending", OutboxMessage.channel == "chat")).scalar_one()
        if not pending:
            break
        time.sleep(0.2)
    with bot.db.session() as s:
        stored = s.execute(select(func.count()).select_from(Alert)).scalar_one()
        incidents = [(i.id, i.cluster, i.component, i.severity) for i in s.execute(select(Incident).order_by(Incident.id)).scalars()]
        per_incident = dict(s.execute(select(Alert.incident_id, func.count()).group_by(Alert.incident_id)).all())
    if fake is not None:
        delivered = Counter(c["method"] for c in fake.calls if c["method"].startswith(("chat.", "conversations.")))
    else:
        delivered = Counter(m.kind for _, m in server.deliverer.delivered)
    server.stop()
    bot.close()
    if fake is not None:
        fake.stop()
    return {"alerts": len(alerts), "stored": stored, "incidents": incidents, "per_incident": per_incident,
            "delivered": dict(delivered), "payloads": sent_payloads, "bytes": sent_bytes, "seconds": storm_seconds,
            "retries": retries, "webhook_ms": webhook_ms, "api_ms": api_ms, "dispatch_ms": dispatch_ms,
            "slash_ms": slash_ms}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--group-interval", type=float, default=5.0, help="Alertmanager re-send period (s)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--quiet-n", type=int, default=300)
    parser.add_argument("--skip-quiet", action="store_true")
    parser.add_argument("--skip-storm", action="store_true")
    parser.add_argument("--chat", choices=["slack", "recorder"], default="slack",
                        help="storm: the real Slack adapter against a loopback fake Web API, or a recording deliverer")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as d:
        tmp = Path(d)
        if not args.skip_quiet:
            for slack in (False, True):
                q = quiet(tmp, args.quiet_n, slack)
                where = "Slack adapter -> fake Web API chat.postMessage" if slack else "recording deliverer"
                print(f"== quiet: webhook received -> announce card delivered ({where}; one new incident per webhook)")
                print("  " + summary("bot's own time", q["own"]))
                print("  " + summary("client send -> delivered", q["end_to_end"]))
        if not args.skip_storm:
            r = storm(tmp, args.alerts, args.seconds, args.group_interval, args.connections, args.chat == "slack")
            print(f"== storm: {r['alerts']} alerts over {r['seconds']:.1f} s, {r['payloads']} deliveries "
                  f"({r['bytes'] / 1e6:.1f} MB, re-sent every {args.group_interval:g} s, {args.connections} connections, "
                  f"{r['retries']} retried after a closed keep-alive connection)")
            print(f"  alerts stored: {r['stored']} of {r['alerts']}")
            print(f"  incidents: {len(r['incidents'])}: " + ", ".join(
                f"INC-{i} {cl}/{co} {sev} ({r['per_incident'].get(i, 0)} alerts)" for i, cl, co, sev in r["incidents"]))
            print(f"  chat deliveries ({args.chat}): {sum(r['delivered'].values())} {r['delivered']}")
            print("  " + summary("webhook response", r["webhook_ms"]))
            print("  " + summary("GET /api/incidents during the storm", r["api_ms"]))
            print("  " + summary("/incident status via the dispatcher during the storm", r["dispatch_ms"]))
            if r["slash_ms"]:
                print("  " + summary("signed Slack slash command acknowledged (POST /slack/events)", r["slash_ms"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
