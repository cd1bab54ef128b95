"""Settings and the bot as every subcommand builds them from its arguments.

Apart from ``bot/compose/cli/main.py`` so that the subcommands of ``bot/compose/cli/commands_*.py`` (which
main registers) build their settings the same way without importing main back.  Both
functions import lazily: ``incident-bot --version`` must not load the configuration or the
bot (tests/core/test_cli_startup.py).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.compose.app.bot import Bot
    from bot.core.config import Settings


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings file (``--config``) with the command line's overrides, logging configured."""
    from bot.core.config import load_settings

    settings = load_settings(args.config)
    if getattr(args, "database_url", None):
        settings.database_url = args.database_url
    if not getattr(args, "log_level", None) or not getattr(args, "log_format", None):
        from bot.compose.app import logs  # the file's log_level / log_format apply where no flag was given

        logs.configure(args.log_level or settings.log_level, args.log_format or settings.log_format)
    return settings


def bot_from(args: argparse.Namespace) -> Bot:
    """The whole bot (store, chat, workers) built from the command line's settings."""
    from bot.compose.app.bot import build_bot

    return build_bot(settings_from(args))
