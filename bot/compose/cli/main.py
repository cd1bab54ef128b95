"""The ``incident-bot`` command line.

Every subcommand loads settings the same way and turns an
``IncidentBotError`` into one line on stderr and exit status 2; anything else
is logged with its traceback to the log (never shown as the answer).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from bot.compose.cli.loading import bot_from, settings_from
from bot.core.errors import IncidentBotError

log = logging.getLogger("incident-bot")

# name -> (help, configure(parser), run(args) -> exit code); capabilities add theirs in bot/compose/cli/commands_*.py
Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


# ---------------------------------------------------------------- console
def _console_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", default=None, help="who you are in the chat (default: $USER)")


def _console(args: argparse.Namespace) -> int:
    import getpass

    from bot.chat.console import Console

    bot = bot_from(args)
    try:
        user = args.user or getpass.getuser() or "operator"
        # the console shows the bot's messages; it delivers (takes) them only when nothing else does
        console = Console(bot.dispatcher, user=user, workers=bot.workers)
        if sys.stdin.isatty():
            print("incident-bot console — type `/incident help`; `/as <user>` to speak as someone else; Ctrl-D to quit.")
        return console.run(sys.stdin, tick_seconds=bot.settings.outbox_interval_seconds)
    finally:
        bot.close()


# ---------------------------------------------------------------- serve
def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=None, help="address to listen on (default: setting host, INCIDENT_BOT_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="default: setting port, INCIDENT_BOT_PORT, 8080")
    p.add_argument("--socket-mode", action="store_true", help="connect to Slack over Socket Mode (SLACK_APP_TOKEN)")
    p.add_argument("--allow-unauthenticated-api", action="store_true",
                   help="serve /api/* without api_token on a non-loopback address (something in front authenticates)")


def _serve(args: argparse.Namespace) -> int:
    from bot.compose.app.serve import serve

    return serve(settings_from(args), host=args.host, port=args.port, socket_mode=args.socket_mode,
                 allow_unauthenticated_api=args.allow_unauthenticated_api)


# ---------------------------------------------------------------- guard-process
def _guard_process_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--parent-pid", type=int, required=True, help="the serve process that started this one")


def _guard_process(args: argparse.Namespace) -> int:
    from bot.compose.app.guard_child import run

    return run(args.parent_pid, sys.stdin.buffer, sys.stdout)


# ---------------------------------------------------------------- db
def _db_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["upgrade", "current"], help="upgrade: apply migrations; current: show revision")


def _db(args: argparse.Namespace) -> int:
    from bot.core.store import migrate
    from bot.core.store.db import Database, redact_url

    settings = settings_from(args)
    db = Database(settings.database_url)
    db.check()
    if args.action == "current":
        print(f"{redact_url(settings.database_url)}: revision {migrate.current_revision(db) or 'none'} "
              f"(head {migrate.head_revision()})")
        return 0
    before, after = migrate.upgrade(db)
    print(f"{redact_url(settings.database_url)}: {before or 'empty'} -> {after}")
    return 0


COMMANDS: dict[str, Command] = {
    "serve": ("run the service: HTTP endpoints, Slack, background workers", _serve_args, _serve),
    "console": ("the bot with a terminal chat instead of Slack (reads stdin)", _console_args, _console),
    "db": ("database migrations", _db_args, _db),
    "guard-process": ("the admission webhook alone (serve starts it with guard.own_process; settings on stdin)",
                      _guard_process_args, _guard_process),
}


SUBCOMMAND_MODULES = ("bot.compose.cli.commands_export", "bot.compose.cli.commands_sop", "bot.compose.cli.commands_playbooks",
                      "bot.compose.cli.commands_sandbox", "bot.compose.cli.commands_report")


def _load_extensions() -> None:
    """Capabilities register their subcommands by adding to COMMANDS."""
    import importlib

    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).register(COMMANDS)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("incident-bot")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named on the line (the first word that is one), without parsing the rest."""
    return next((word for word in argv if word in COMMANDS), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the subcommand it names gets its arguments configured.

    Configuring a subcommand may import what it needs (``drill`` lists the
    scenarios, which loads the sandbox and the Kubernetes client: a second of
    imports); ``--version``, ``--help`` or ``export`` should not pay for that.
    """
    _load_extensions()
    wanted = chosen_command(argv) if argv is not None else None
    parser = argparse.ArgumentParser(
        prog="incident-bot",
        description="ChatOps incident response for large Kubernetes control planes, held to the 1-5-10 clock.",
    )
    parser.add_argument("--config", help="YAML settings file (or INCIDENT_BOT_CONFIG)")
    parser.add_argument("--database-url", help="overrides INCIDENT_BOT_DATABASE_URL")
    parser.add_argument("--version", action="version", version=f"incident-bot {_version()}")
    parser.add_argument("--log-level", default=None,
                        help="DEBUG, INFO, WARNING (default), ERROR; or INCIDENT_BOT_LOG_LEVEL / setting log_level")
    parser.add_argument("--log-format", default=None, choices=["text", "json"],
                        help="text (default) or json, one object a line; or INCIDENT_BOT_LOG_FORMAT")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (summary, configure, run) in COMMANDS.items():
        p = sub.add_parser(name, help=summary, description=summary)
        if argv is None or name == wanted:
            configure(p)
        p.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    from bot.compose.app import logs

    try:  # before settings are read (their own errors are logged); settings_from() re-applies the file's choice
        logs.configure(args.log_level or os.environ.get("INCIDENT_BOT_LOG_LEVEL") or "WARNING",
                       args.log_format or os.environ.get("INCIDENT_BOT_LOG_FORMAT") or "text")
    except ValueError as exc:
        parser.error(f"--log-level/--log-format (or INCIDENT_BOT_LOG_LEVEL/INCIDENT_BOT_LOG_FORMAT): {exc}")
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except IncidentBotError as exc:
        print(f"incident-bot: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception:
        log.exception("unexpected failure")
        print("incident-bot: unexpected failure; see the log above for details", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
