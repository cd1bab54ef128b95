#!/usr/bin/env python3
"""Alert storms against ``incident-bot serve`` processes (all workers, real Slack adapter, fake Slack).

Each replica is ``incident-bot serve`` started as an operator starts it; Slack is
the loopback fake of the Web API (``tests/support/fake_slack.py``) in this
process, stamped with the time each call arrived.  The storm is shaped like
Alertmanager: alerts of ``--clusters`` clusters appear at ``--rate`` per minute
for ``--seconds``; a group (cluster, component, alertname) is sent with *all*
its alerts when it first has alerts and every ``--group-interval`` seconds
while it keeps changing; deliveries go to the replicas in turn, and a group's
first delivery goes to every replica at once (an Alertmanager HA pair both sending).

Reported: alerts sent vs stored (lost), incidents opened per group key
(duplicates), identical Slack messages posted more than once (duplicates),
webhook sent -> announce card posted in Slack for every new incident (p99,
goal <= 1 s), signed ``/incident status`` slash commands acknowledged during
the storm (p99, goal <= 300 ms), and stored alerts per second per replica.
``--flat-out`` sends every delivery as fast as answers come, each to one
replica in turn (capacity, not a paced storm): run it with 1 and 2 replicas
for the second replica's gain.

    .venv/bin/python benchmarks/bench_storm.py --store sqlite --replicas 1 --rate 10000 --clusters 2
    .venv/bin/python benchmarks/bench_storm.py --store postgres --replicas 2 --rate 100000 --clusters 50
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from processes import HEADERS, Server, describe, migrate, pct, postgres, start_bot  # noqa: E402

from tests.support import slack_signing  # noqa: E402
from tests.support.fake_slack import FakeSlack  # noqa: E402

COMPONENTS = [("etcd", "EtcdMemberDown", "critical"), ("apiserver", "KubeAPIErrorRatioHigh", "critical"),
              ("kubelet", "KubeNodeNotReady", "warning"), ("kubelet", "KubeletPlegDurationHigh", "warning"),
              ("dns", "CoreDNSErrorsHigh", "warning")]
USERS = {"alice": "U0ALICE", "bob": "U0BOB", "carol": "U0CAROL"}


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def timed_slack() -> FakeSlack:
    """The fake Web API, each recorded call stamped with when it arrived."""
    fake = FakeSlack()
    original = fake._record

    def record(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        with fake._lock:
            fake.calls[-1]["at"] = time.time()

    fake._record = record  # type: ignore[method-assign]
    return fake.start()


def storm_plan(rate: int, seconds: float, clusters: int) -> list[tuple[float, tuple[str, str, str], dict[str, Any]]]:
    """(offset s, group, alert): every cluster's etcd first, the rest of the cascade after, uniformly."""
    rnd = random.Random(15)
    total = int(rate * seconds / 60)
    start = datetime.now(timezone.utc)
    plan = []
    for n in range(total):
        cluster = f"c{n % clusters:02d}"
        component, name, severity = COMPONENTS[0] if n < clusters * 3 else rnd.choice(COMPONENTS[1:])
        offset = n / total * seconds
        labels = {"alertname": name, "severity": severity, "cluster": cluster, "component": component,
                  "instance": f"{component}-{n:06d}"}
        alert = {"status": "firing", "labels": labels, "annotations": {"summary": f"{name} on {labels['instance']}"},
                 "startsAt": iso(start + timedelta(seconds=offset)), "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "http://prometheus:9090/graph", "fingerprint": f"{cluster}{n:014x}"}
        plan.append((offset, (cluster, component, name), alert))
    return plan


def body(group: tuple[str, str, str], alerts: list[dict[str, Any]]) -> bytes:
    return json.dumps({"receiver": "incident-bot", "status": "firing", "alerts": alerts,
                       "groupLabels": {"cluster": group[0], "alertname": group[2]}, "commonLabels": {},
                       "commonAnnotations": {}, "externalURL": "http://am:9093", "version": "4",
                       "groupKey": json.dumps(group), "truncatedAlerts": 0}).encode()


class Storm:
    def __init__(self, replicas: list[Server], fake: FakeSlack, args: argparse.Namespace) -> None:
        self.replicas, self.fake, self.args = replicas, fake, args
        self.lock = threading.Lock()
        self.opened: dict[int, float] = {}  # incident -> when the delivery that opened it was sent
        self.stored: Counter[str] = Counter()  # replica -> alerts it stored
        self.webhook_ms: list[float] = []
        self.slash_ms: list[float] = []
        self.deliveries = 0
        self.turn = itertools.count()

    def send(self, client: dict[str, httpx.Client], group: tuple[str, str, str], alerts: list[dict[str, Any]],
             everywhere: bool) -> None:
        """One delivery; ``everywhere``: to every replica at the same moment, as both members of an
        Alertmanager HA pair send a new group (the replicas race for it; one stores it)."""
        payload = body(group, alerts)
        if not everywhere:
            self._post(client, self.replicas[next(self.turn) % len(self.replicas)], payload)
            return
        errors: list[BaseException] = []
        senders = [threading.Thread(target=self._post, args=(client, server, payload, errors))
                   for server in self.replicas]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        if errors:
            raise errors[0]

    def _post(self, client: dict[str, httpx.Client], server: Server, payload: bytes,
              errors: list[BaseException] | None = None) -> None:
        try:
            sent = time.time()
            start = time.perf_counter()
            for attempt in range(3):  # Alertmanager retries a failed delivery
                try:
                    response = client[server.name].post(server.url + "/webhooks/alertmanager", content=payload,
                                                        headers=HEADERS)
                    break
                except httpx.TransportError:
                    if attempt == 2:
                        raise
            took = (time.perf_counter() - start) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{server.name}: {response.status_code} {response.text[:300]}")
            answer = response.json()
            with self.lock:
                self.webhook_ms.append(took)
                self.deliveries += 1
                self.stored[server.name] += answer["stored"]
                for ref in answer["opened"]:
                    self.opened.setdefault(int(ref.split("-")[1]), sent)
        except BaseException as exc:
            if errors is None:
                raise
            errors.append(exc)

    def slash(self, stop: threading.Event) -> None:
        with httpx.Client(timeout=30) as client:
            for n in itertools.count():
                if stop.is_set():
                    return
                server = self.replicas[n % len(self.replicas)]
                text, headers = slash_command_for(self.fake, n)
                start = time.perf_counter()
                response = client.post(server.url + "/slack/events", content=text.encode(), headers=headers)
                took = (time.perf_counter() - start) * 1000
                if response.status_code == 200:
                    with self.lock:
                        self.slash_ms.append(took)
                stop.wait(0.1)

    def run(self) -> tuple[float, int]:
        plan = storm_plan(self.args.rate, self.args.seconds, self.args.clusters)
        appeared: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        sent_count: dict[tuple[str, str, str], int] = {}
        clients = [{s.name: httpx.Client(timeout=120) for s in self.replicas} for _ in range(self.args.connections)]
        pool = ThreadPoolExecutor(self.args.connections)
        stop = threading.Event()
        asker = threading.Thread(target=self.slash, args=(stop,), daemon=True)
        asker.start()
        started = time.monotonic()
        index, tick = 0, 0
        try:
            while index < len(plan) or any(len(a) != sent_count.get(g) for g, a in appeared.items()):
                now = float("inf") if self.args.flat_out else time.monotonic() - started
                while index < len(plan) and plan[index][0] <= now:
                    appeared[plan[index][1]].append(plan[index][2])
                    index += 1
                futures = []
                for n, (group, alerts) in enumerate(sorted(appeared.items())):
                    if sent_count.get(group) == len(alerts):
                        continue  # unchanged since its last notification: Alertmanager does not re-send it
                    # a paced storm's first delivery of a group reaches every replica (an Alertmanager HA pair);
                    # flat out measures capacity, so each delivery goes to one replica in turn
                    first = group not in sent_count and not self.args.flat_out
                    sent_count[group] = len(alerts)
                    futures.append(pool.submit(self.send, clients[n % len(clients)], group, list(alerts), first))
                for f in futures:
                    f.result()
                tick += 1
                if not self.args.flat_out:
                    time.sleep(max(0.0, tick * self.args.group_interval - (time.monotonic() - started)))
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            pool.shutdown(wait=True)
            asker.join(30)
            for per in clients:
                for c in per.values():
                    c.close()
        return elapsed, len(plan)


def slash_command_for(fake: FakeSlack, n: int) -> tuple[str, dict[str, str]]:
    return slash_command("status INC-1", response_url=fake.response_url(f"storm-{n}"))


slash_command = slack_signing.slash_command


def cards(fake: FakeSlack) -> dict[int, float]:
    """Incident -> when its first message naming it reached Slack (the announce card)."""
    first: dict[int, float] = {}
    for call in list(fake.calls):
        if call["method"] != "chat.postMessage" or "at" not in call:
            continue
        for match in re.finditer(r"INC-(\d+)\b", json.dumps(call["body"])):
            first.setdefault(int(match.group(1)), call["at"])
            break
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--rate", type=int, default=10_000, help="new alerts per minute")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clusters", type=int, default=2)
    parser.add_argument("--group-interval", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--flat-out", action="store_true", help="no pacing: send as fast as answers come")
    args = parser.parse_args(argv)
    if args.store == "sqlite" and args.replicas != 1:
        parser.error("several replicas need --store postgres")
    fake = timed_slack()
    for name, user_id in USERS.items():
        fake.add_user(user_id, name, f"{name}@example.com")
    env = {"SLACK_BOT_TOKEN": "xoxb-0000-bench", "SLACK_SIGNING_SECRET": slack_signing.SECRET,
           "SLACK_API_URL": fake.api_url, "INCIDENT_BOT_SLACK__USERS": json.dumps(USERS),
           "INCIDENT_BOT_OUTBOX_INTERVAL_SECONDS": "0.5"}
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as d:
        workdir = Path(d)
        pg_context = postgres() if args.store == "postgres" else None
        pg = pg_context.__enter__() if pg_context else None
        replicas: list[Server] = []
        try:
            url = pg.database("storm") if pg else f"sqlite:///{workdir / 'storm.db'}"
            migrate(url)
            replicas = [start_bot(f"replica-{n + 1}", url, workdir, env) for n in range(args.replicas)]
            cpu0 = [r.cpu_seconds() for r in replicas]
            storm = Storm(replicas, fake, args)
            elapsed, sent = storm.run()
            cpu = [r.cpu_seconds() - c for r, c in zip(replicas, cpu0)]
            deadline = time.time() + 60
            while time.time() < deadline and any(i not in cards(fake) for i in storm.opened):
                time.sleep(0.2)
            time.sleep(3)  # let the senders drain what is left
            report(storm, fake, url, args, elapsed, sent, cpu)
        finally:
            for r in replicas:
                r.stop()
            if pg_context:
                pg_context.__exit__(None, None, None)
            fake.stop()
    return 0


def report(storm: Storm, fake: FakeSlack, url: str, args: argparse.Namespace, elapsed: float, sent: int,
           cpu: list[float]) -> None:
    from sqlalchemy import func, select

    from bot.core.store.db import Database
    from bot.core.store.models import Alert, Incident

    db = Database(url)
    with db.reading() as s:
        stored = s.execute(select(func.count()).select_from(Alert)).scalar_one()
        by_key = Counter(k for (k,) in s.execute(select(Incident.group_key)))
    db.dispose()
    first_card = cards(fake)
    card_ms = [(first_card[i] - t) * 1000 for i, t in storm.opened.items() if i in first_card]
    missing = [i for i in storm.opened if i not in first_card]
    posts = Counter((c["body"].get("channel"), json.dumps(c["body"].get("text")), json.dumps(c["body"].get("blocks")))
                    for c in fake.calls if c["method"] == "chat.postMessage")
    mode = "flat out" if args.flat_out else f"{args.rate:,} alerts/min paced, group interval {args.group_interval:g} s"
    print(f"== {args.store}, {args.replicas} replica(s), {args.clusters} clusters, {mode}")
    print(f"  {sent} alerts sent in {elapsed:.1f} s over {storm.deliveries} deliveries; stored {stored} "
          f"(lost {sent - stored})")
    print(f"  incidents {sum(by_key.values())} over {len(by_key)} group keys; group keys with more than one "
          f"incident: {sum(1 for n in by_key.values() if n > 1)}")
    print(f"  Slack: {sum(posts.values())} chat.postMessage, identical messages posted more than once: "
          f"{sum(1 for n in posts.values() if n > 1)}")
    print("  " + describe("webhook sent -> announce card in Slack (new incidents)", card_ms)
          + (f"; {len(missing)} never announced" if missing else ""))
    print("  " + describe("webhook answered", storm.webhook_ms))
    print("  " + describe("signed /incident status acknowledged during the storm", storm.slash_ms))
    for (name, n), seconds in zip(sorted(storm.stored.items()), cpu):
        print(f"  {name}: stored {n} alerts, {n / elapsed:.0f} alerts/s, {seconds:.1f} s CPU")
    print(f"  total {stored / elapsed:.0f} alerts/s stored; p99 card {pct(card_ms, 99):.0f} ms (goal <= 1000), "
          f"p99 slash ack {pct(storm.slash_ms, 99):.0f} ms (goal <= 300)")


if __name__ == "__main__":
    sys.exit(main())
