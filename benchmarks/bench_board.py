#!/usr/bin/env python3
"""Web board benchmark: 200 open incidents; server render time and how fast a change reaches the screen.

1. **Render**: the board page and the polled cards fragment with 200 open
   incidents (a third acknowledged, a third diagnosed, 20 fleet incidents of
   three clusters, 20 runs in progress), timed in the server (the view's own
   time, as ``Server-Timing`` reports it) and end to end over HTTP through
   uvicorn.  Target: ≤ 200 ms server time.
2. **Update delay**: headless Chromium (Debian's) shows the board; an incident
   is declared through the chat dispatcher; the time until its card is on the
   screen, without a reload.  Target: ≤ 1 s plus one render.

    .venv/bin/python benchmarks/bench_board.py [--incidents 200] [--rounds 50] [--updates 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from pydantic import SecretStr

from bot.compose.app.bot import build_bot
from bot.chat.dispatcher import ChatContext
from bot.core.config import load_settings
from bot.core.store.models import IncidentCluster, PlaybookRun, RunStep
from tests.support.browser import ARGS, CHROMIUM
from tests.ui.conftest import serve

TOKEN = "bench-token"


def populate(bot, n: int) -> None:  # type: ignore[no-untyped-def]
    say = bot.dispatcher.handle
    for i in range(1, n + 1):
        ctx = ChatContext(user=f"ic{i % 7}", adapter="bench")
        say(ctx, f"/incident declare apiserver 5xx wave {i} --severity sev{1 + i % 3} --cluster prod-{i % 12}")
        ctx.incident_id = i
        if i % 3:
            say(ctx, "/incident ack")
        if i % 3 == 2:
            say(ctx, f"/incident cause LIST storm from ci-robot-{i}")
    now = bot.clock.now()
    with bot.db.session() as s:
        for i in range(1, 21):
            for c in ("prod-a", "prod-b", "prod-c"):
                s.add(IncidentCluster(incident_id=i, cluster=c, state="diagnosing", started_at=now, detected_at=now,
                                      notified_at=now))
        for i in range(21, 41):
            run = PlaybookRun(incident_id=i, playbook="throttle-client", cluster="prod-1", state="running",
                              requested_by="ic1", requested_at=now, started_at=now)
            s.add(run)
            s.flush()
            s.add(RunStep(run_id=run.id, index=0, phase="execute", name="create FlowSchema", state="running",
                          started_at=now))


def stats(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return f"median {statistics.median(ordered):6.1f} ms  p95 {p95:6.1f} ms  max {ordered[-1]:6.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--updates", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(environ={})
        settings.database_url = f"sqlite:///{Path(tmp) / 'board.db'}"
        settings.api_token = SecretStr(TOKEN)
        bot = build_bot(settings, extensions=["bot.compose.app.export", "bot.compose.app.followups", "bot.compose.app.ui"])
        started = time.perf_counter()
        populate(bot, args.incidents)
        print(f"{args.incidents} open incidents written in {time.perf_counter() - started:.1f}s")
        ui = bot.services.extras["web_board"]
        for name, fn in (("board page", ui.render_board), ("cards fragment", ui.render_cards)):
            fn()  # templates compiled, caches warm
            times = []
            for _ in range(args.rounds):
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1000)
            print(f"server render, {name:15s}: {stats(times)}")
        served = serve(bot)
        try:
            with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                client.get("/ui/")
                for path in ("/ui/", "/ui/board/cards"):
                    times, server = [], []
                    for _ in range(args.rounds):
                        t = time.perf_counter()
                        answer = client.get(path)
                        times.append((time.perf_counter() - t) * 1000)
                        timing = answer.headers.get("server-timing")
                        if timing:
                            server.append(float(timing.split("dur=")[1]))
                    print(f"over HTTP, {path:21s}: {stats(times)}  ({len(answer.content):,} bytes)")
                    if server:
                        print(f"  Server-Timing of {path}: {stats(server)}")
            from playwright.sync_api import sync_playwright

            delays, declares = [], []
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                page.goto(f"{served.url}/ui/?token={TOKEN}")
                for k in range(args.updates):
                    n = args.incidents + k + 1
                    t = time.perf_counter()
                    bot.dispatcher.handle(ChatContext(user="bench"), f"/incident declare new fault {k} --severity sev1")
                    committed = time.perf_counter()
                    page.wait_for_selector(f"#INC-{n}", timeout=10_000)
                    declares.append((committed - t) * 1000)
                    delays.append((time.perf_counter() - committed) * 1000)
                browser.close()
            print(f"declare through chat (commit): {stats(declares)}")
            print(f"update delay (committed -> card on screen, refresh {settings.ui.refresh_seconds:g} s): {stats(delays)}")
        finally:
            served.server.should_exit = True
            served.thread.join(10)
            bot.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
