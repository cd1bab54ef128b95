"""A playbook engine in a process of its own, which SIGKILLs itself at a named boundary.

    python -m tests.playbooks_real.engine_proc SETTINGS_JSON CLOCK_ISO RUN_ID HOOK_LABEL

Builds the engine the way ``serve`` does (settings, the database, the shipped
registry, a toolbox from settings alone), starts the approved run and, when
the executor reaches ``HOOK_LABEL`` (e.g. ``step:1:done``: the step's change
is made, its checkpoint not yet written), kills itself with SIGKILL: no
``finally``, no atexit, no flush.  Exit code 0 means the hook was never hit.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime
from pathlib import Path

from bot.core.clock import FakeClock
from bot.core.config import Settings
from bot.domain.incidents.service import Incidents
from bot.core.store.db import Database
from playbooks.engine import Toolbox, build_engine


def main(argv: list[str]) -> int:
    settings = Settings.model_validate_json(Path(argv[0]).read_text())
    clock = FakeClock(datetime.fromisoformat(argv[1]))
    run_id, label = int(argv[2]), argv[3]
    db = Database(settings.database_url)
    engine = build_engine(db, settings, clock, Incidents(db, settings, clock), tools=Toolbox(settings))

    def die(seen: str, rid: int) -> None:
        if seen == label and rid == run_id:
            os.kill(os.getpid(), signal.SIGKILL)

    engine.executor.hooks.append(die)
    print(engine.executor.start(run_id), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
