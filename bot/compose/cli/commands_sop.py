"""`incident-bot sop list | validate [PATH...] | run NAME (--incident INC | --cluster NAME) [--explain]`.

For procedure authors: ``validate`` names file, line and fault for every
problem (exit 1); ``run`` runs one procedure against the configured cluster
and prints its conclusion — with ``--explain`` every check, its evidence and
the path taken through the tree.  ``run`` only looks: it records nothing on
the incident unless ``--record`` is given (then it is ``/incident diagnose``).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, Any

from bot.core.errors import BadInput, IncidentBotError

if TYPE_CHECKING:  # the CLI imports what a command needs when it runs
    from bot.core.config import Settings
    from bot.domain.diagnosis.library import Library


def _args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="sop_action", metavar="ACTION")
    ls = sub.add_parser("list", help="the procedures, what they apply to, their checks and playbooks")
    ls.add_argument("--dir", action="append", default=None, help="load procedures from here (repeatable)")
    ls.add_argument("--kinds", action="store_true", help="also list the check kinds and their fields")
    val = sub.add_parser("validate", help="check procedure files; every problem with file and line")
    val.add_argument("paths", nargs="*", help="files or directories (default: the configured procedures)")
    run = sub.add_parser("run", help="run one procedure and show its conclusion")
    run.add_argument("name", help="the procedure, e.g. apiserver-overload")
    run.add_argument("--incident", help="the incident whose cluster and alerts the procedure sees, e.g. INC-42")
    run.add_argument("--cluster", help="without an incident: the cluster to look at")
    run.add_argument("--explain", action="store_true", help="show each check, its evidence and the path taken")
    run.add_argument("--record", action="store_true", help="record it on the incident (like /incident diagnose)")
    run.add_argument("--dir", action="append", default=None, help="load procedures from here (repeatable)")


def _dirs(args: argparse.Namespace, settings: Settings) -> list[str]:
    return list(getattr(args, "dir", None) or settings.diagnosis.sop_dirs)


def _run(args: argparse.Namespace) -> int:
    from bot.compose.cli.loading import settings_from
    from bot.domain.diagnosis import explain
    from bot.domain.diagnosis.library import BUILTIN_DIR, Library, validate

    action = getattr(args, "sop_action", None)
    if action is None:
        raise BadInput("say what to do: `incident-bot sop list`, `sop validate [PATH...]` or `sop run NAME`.",
                       field="action")
    settings = settings_from(args)
    if action == "validate":
        paths = args.paths or _dirs(args, settings) or [str(BUILTIN_DIR)]
        procedures, problems = validate(paths)
        for problem in problems:
            print(problem)
        if problems:
            print(f"{len(problems)} problem(s); {len(procedures)} procedure(s) valid", file=sys.stderr)
            return 1
        if not procedures:
            print(f"no procedure files in {', '.join(map(str, paths))}", file=sys.stderr)
            return 1
        print(f"ok: {len(procedures)} procedure(s) valid: {', '.join(sorted(p.name for p in procedures))}")
        return 0
    library = Library.load(_dirs(args, settings))
    if action == "list":
        print("\n".join(explain.listing(list(library.procedures.values()))))
        if args.kinds:
            print("\ncheck kinds:\n" + "\n".join("  " + line for line in explain.kinds()))
        return 0
    return _run_one(args, settings, library)


def _run_one(args: argparse.Namespace, settings: Settings, library: Library) -> int:
    from bot.compose.app.bot import build_bot
    from bot.domain.diagnosis import explain
    from bot.domain.diagnosis.runner import Runner
    from bot.domain.diagnosis.service import DIAGNOSER, incident_context

    procedure = library.get(args.name)
    if not args.incident and not args.cluster:
        raise BadInput("name the incident (`--incident INC-42`) or the cluster (`--cluster NAME`) to look at.",
                       field="incident")
    if args.record and not args.incident:
        raise BadInput("--record needs --incident.", field="record")
    bot = build_bot(settings)
    try:
        diagnoser = bot.services.extras.need(DIAGNOSER)
        diagnoser.library = library
        if args.record:
            result = diagnoser.diagnose(args.incident, actor=getpass.getuser() or "cli", source="cli",
                                        sop=procedure.name)
            if result is None:  # only an automatic run may find nothing to do; this one was asked for
                raise IncidentBotError(f"{args.incident} was not diagnosed: no procedure ran.")
            print("\n".join(explain.outcome(result.outcome, explain=args.explain)))
            print(result.sentence())
            return 0
        if args.incident:
            with bot.db.session() as session:
                row = bot.services.incidents.load(session, args.incident)  # a read
                context = incident_context(session, row)
            cluster = args.cluster or row.cluster
        else:
            cluster = args.cluster
            context = {"id": None, "ref": None, "title": "(no incident)", "severity": None, "cluster": cluster,
                       "component": None, "state": None, "started_at": None, "labels": {}, "alert_names": [],
                       "alerts": []}
        runner = Runner(diagnoser.backends(cluster), bot.clock, check_timeout=settings.diagnosis.check_timeout_seconds)
        outcome = runner.run(procedure, context)
        print("\n".join(explain.outcome(outcome, explain=args.explain)))
        return 0
    finally:
        bot.close()


def register(commands: dict[str, Any]) -> None:
    commands["sop"] = ("diagnosis procedures: list, validate, run", _args, _run)
