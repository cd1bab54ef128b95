"""``incident-bot serve`` with its imports done ahead: the kill tests' next process, waiting for its turn.

    python -m tests.reliability.warm_serve serve --port N   # then one line on stdin: start

Importing the bot (SQLAlchemy, the Kubernetes and Slack clients, the playbook
library...) is most of what a start costs, and it is the same code whichever
process does it.  The kill tests spawn the next ``serve`` while the current one
runs; it imports, then blocks on stdin *before* it reads its settings, touches
the database or starts a worker.  When the test has SIGKILLed the current one it
writes a line and this process runs ``incident-bot serve`` exactly as the CLI
does (``bot.compose.cli.main.main``): settings, migrations, the workers that
resume the killed run, the HTTP listener.  Nothing the bot recovers from is made
before the kill.  End of input without a line: it exits without starting.

A module left out of ``WARM`` only makes the start slower, never different.
"""

from __future__ import annotations

import importlib
import sys

WARM = ("bot.compose.cli.main", "bot.compose.app.serve", "bot.compose.app.bot", "bot.compose.app.http",
        "bot.compose.app.webhooks", "bot.compose.app.openapi", "bot.compose.app.ui", "bot.compose.app.admission",
        "bot.chat.handlers_playbooks", "bot.chat.handlers_diagnosis", "bot.domain.diagnosis.service",
        "bot.domain.diagnosis.library", "bot.core.store.migrate", "integrations.adapters.slack.extension",
        "integrations.clients.kubernetes.client", "integrations.clients.pagerduty.events",
        "integrations.clients.haproxy", "integrations.clients.etcd", "playbooks.engine.service",
        "playbooks.library.restore_etcd", "playbooks.library.throttle_client", "uvicorn.main")


def main() -> int:
    for name in WARM:
        importlib.import_module(name)
    if not sys.stdin.readline():
        return 0  # not needed: the chain ended before this process's turn
    from bot.compose.cli.main import main as cli

    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
