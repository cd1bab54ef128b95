"""The ``incident-bot`` command line: ``main`` parses and dispatches, ``commands_*`` add subcommands.

Nothing imports this package but the console script (``bot.compose.cli.main:main``); ``loading`` builds the
settings and the bot from the arguments for every subcommand.
"""

__all__ = ["main"]
