"""A process that runs the playbook engine on a database until a run ends -- or kills itself.

``python -m tests.playbooks.crash_runner DB_URL RUN_ID [--kill-at LABEL] [--labels FILE] [--kubeconfig F]``

It builds the bot as ``serve`` would (SystemClock, the database file shared
with the test), ticks the playbook worker until run RUN_ID is finished, and
exits 0.  With ``--kill-at``, it sends itself SIGKILL at that engine boundary
(``claimed``, ``step:1:done`` ...) or, for ``inside:step:N``, from inside the
file playbook's step N right after its change: nothing gets flushed, nothing
gets cleaned up, exactly like a crash.  Every boundary passed is appended to
``--labels``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from bot.compose.app.bot import build_bot
from bot.chat import handlers_playbooks
from bot.core.clock import SystemClock
from bot.core.config import load_settings
from bot.core.config.budgets import StageBudgets
from bot.core.store.models import PlaybookRun
from tests.playbooks.file_playbook import KILL_INSIDE_STEP, registry_for_tests

FINISHED = {"succeeded", "failed", "rolled_back", "rejected", "aborted", "expired", "handed_back"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("db_url")
    ap.add_argument("run_id", type=int)
    ap.add_argument("--kill-at")
    ap.add_argument("--labels")
    ap.add_argument("--kubeconfig")
    ap.add_argument("--deadline", type=float, default=30)
    args = ap.parse_args(argv)
    settings = load_settings(environ={})
    settings.database_url = args.db_url
    settings.oncall.rota = ["alice", "bob", "carol"]
    settings.playbooks.stale_after_seconds = 0.3
    settings.auto_migrate = False  # the test migrated the file; a restart must not need to
    # the runs are compared event by event with an undisturbed one: on a slow machine the kills
    # take longer than a 1-minute notify budget, and a breach is not what this test is about
    settings.budgets.default = StageBudgets(notify=86400, diagnose=86400, mitigate=86400)
    settings.kubeconfig = args.kubeconfig
    if args.kill_at and args.kill_at.startswith("inside:step:"):
        os.environ[KILL_INSIDE_STEP] = args.kill_at.rsplit(":", 1)[1]
    bot = build_bot(settings, clock=SystemClock(), extensions=[])
    engine = handlers_playbooks.install(bot, registry=registry_for_tests())

    def hook(label: str, run_id: int) -> None:
        if args.labels:
            with open(args.labels, "a") as f:
                f.write(label + "\n")
        if label == args.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    engine.executor.hooks.append(hook)
    deadline = time.monotonic() + args.deadline
    while time.monotonic() < deadline:
        engine.worker.tick()
        with bot.db.session() as session:
            run = session.get(PlaybookRun, args.run_id)
            if run is not None and run.state in FINISHED:
                print(run.state)
                bot.close()
                return 0
        time.sleep(0.05)  # polling the database of a real process, with a deadline
    print("deadline passed", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())
