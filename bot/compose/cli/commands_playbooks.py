"""``incident-bot playbooks list | show NAME``: the playbooks, documented from their declarations."""

from __future__ import annotations

import argparse
from typing import Any


def _configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="every playbook with its risk and summary")
    show = sub.add_parser("show", help="one playbook: parameters, steps, rollback, limits")
    show.add_argument("name")


def _run(args: argparse.Namespace) -> int:
    from playbooks.engine import default_registry
    from playbooks.engine.docs import describe

    registry = default_registry()
    if args.action == "list":
        width = max((len(n) for n in registry.names()), default=0)
        for playbook in registry.all():
            print(f"{playbook.name.ljust(width)}  {playbook.risk:<8}  {playbook.summary}")
        return 0
    timeout = 60.0
    try:
        from bot.compose.cli.loading import settings_from

        timeout = settings_from(args).playbooks.default_step_timeout_seconds
    except Exception:  # documentation does not need a valid configuration
        pass
    print(describe(registry.get(args.name), default_timeout=timeout))
    return 0


def register(commands: dict[str, Any]) -> None:
    commands["playbooks"] = ("remediation playbooks: list, show", _configure, _run)
