"""`incident-bot export INC --format md|json|html [-o FILE] [--tz ZONE]`.

Without ``-o`` the document goes to stdout (so it pipes into a wiki tool or
``gh pr create --body-file -``); with ``-o`` it is written to the file and a
one-line verdict goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.core.errors import BadInput


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("incident", help="the incident, e.g. INC-42 (or 42)")
    p.add_argument("--format", "-f", default="md", metavar="md|json|html", help="md (default), json or html")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument("--tz", default=None, metavar="ZONE", help="show times in this IANA zone, e.g. Europe/Berlin (default UTC)")
    p.add_argument("--generated-at", default=None, metavar="ISO",
                   help="stamp the document with this time (ISO 8601); omitted by default so exports are reproducible")


def _generated_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"--generated-at: `{value}` is not an ISO 8601 time, e.g. 2026-11-25T09:00:00Z.",
                       field="generated-at") from None
    if parsed.tzinfo is None:
        raise BadInput(f"--generated-at: `{value}` has no zone; add Z or an offset such as +01:00.",
                       field="generated-at")
    return parsed


def _run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from bot.compose.cli.loading import settings_from
    from bot.core.errors import ConfigError
    from bot.domain.export import check_format, export_incident, summary_lines
    from bot.core.store.db import Database

    fmt = check_format(args.format)
    generated_at = _generated_at(args.generated_at)
    settings = settings_from(args)
    # the store alone, read as it is: no bot, chat, Kubernetes or playbook modules, no migrations
    # (an export only reads; building the whole bot cost a second of imports before any work)
    db = Database(settings.database_url)
    try:
        db.check()
        result = export_incident(db, settings, args.incident, fmt=fmt, tz=args.tz, generated_at=generated_at)
    except (OperationalError, ProgrammingError) as exc:
        raise ConfigError(f"INCIDENT_BOT_DATABASE_URL: the database cannot be read as this bot's store "
                          f"({type(exc.orig).__name__}); run `incident-bot db upgrade` first.") from None
    finally:
        db.dispose()
    if not args.output or args.output == "-":
        sys.stdout.write(result.content)
        sys.stdout.flush()
        return 0
    path = Path(args.output)
    try:
        path.write_text(result.content, encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"-o: cannot write {path}: {exc.strerror}.", field="output") from None
    verdicts = "; ".join(line.split(": ", 1)[1] if ": " in line else line for line in summary_lines(result.document)[1:4])
    print(f"wrote {path} ({len(result.content.encode()):,} bytes): {verdicts}", file=sys.stderr)
    return 0


def register(commands: dict[str, Any]) -> None:
    commands["export"] = ("export an incident's post-mortem (md, json, html)", _args, _run)
