"""`incident-bot report [--since 30d] [--cluster X] [--format md|json|html] [-o FILE]`: the 1-5-10 across incidents."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.core.errors import BadInput


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", default="30d", help="incidents that began within this age (30m, 24h, 7d, 2w) or since a date (YYYY-MM-DD); default 30d")
    p.add_argument("--cluster", default=None, help="only this cluster")
    p.add_argument("--format", "-f", default="md", metavar="md|json|html", help="md (default), json or html")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")


def _run(args: argparse.Namespace) -> int:
    from bot.compose.cli.loading import settings_from
    from bot.core.clock import SystemClock
    from bot.domain.export import report_render
    from bot.core.store import migrate
    from bot.core.store.db import Database

    fmt = report_render.check_format(args.format)
    settings = settings_from(args)
    db = Database(settings.database_url)
    try:
        db.check()
        if settings.auto_migrate:
            migrate.upgrade(db)
        with db.session() as session:
            content, _, tree = report_render.build_and_render(session, settings, now=SystemClock().now(),
                                                              since=args.since, cluster=args.cluster, fmt=fmt)
    finally:
        db.dispose()
    if not args.output or args.output == "-":
        sys.stdout.write(content)
        return 0
    path = Path(args.output)
    try:
        path.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"-o: cannot write {path}: {exc.strerror}.", field="output") from None
    print(f"wrote {path}: {tree['incidents']['real']} real incidents, {tree['incidents']['drills']} drills", file=sys.stderr)
    return 0


def register(commands: dict[str, Any]) -> None:
    commands["report"] = ("the 1-5-10 report across incidents (median/p90 per stage, compliance, breaches)", _args, _run)
