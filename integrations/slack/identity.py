"""Who is who: the bot's user names and Slack user ids.

The domain (rota, approvers, commanders) speaks of people by the names in the
configuration, so Slack and the console share them; ``slack.users`` maps a
name to its Slack id.  A Slack user who is not in the map is known by their id
(``U0123ABC``), which then is the name to use in the configuration.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.config import SlackSettings

SLACK_MENTION_RE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
SLACK_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")


class Directory:
    def __init__(self, settings: SlackSettings) -> None:
        self.by_name = {name.lstrip("@"): user_id for name, user_id in settings.users.items()}
        self.by_id = {user_id: name for name, user_id in self.by_name.items()}

    def name_of(self, user_id: str) -> str:
        """The bot's name for a Slack user (their id when unmapped)."""
        return self.by_id.get(user_id, user_id)

    def id_of(self, name: str) -> str | None:
        """The Slack id of a bot user name, or None if there is no way to reach them."""
        name = name.lstrip("@")
        if name in self.by_name:
            return self.by_name[name]
        return name if SLACK_ID_RE.match(name) else None

    def ids_of(self, names: Iterable[str]) -> list[str]:
        out: list[str] = []
        for name in names:
            user_id = self.id_of(name)
            if user_id and user_id not in out:
                out.append(user_id)
        return out

    def command_text(self, text: str) -> str:
        """Slack's ``<@U123|bob>`` mentions in a command line become ``@bob`` (the grammar's form)."""
        return SLACK_MENTION_RE.sub(lambda m: "@" + self.name_of(m.group(1)), text)

    def mention(self, name: str) -> str:
        """How to address a person in a message: a real mention when possible."""
        user_id = self.id_of(name)
        return f"<@{user_id}>" if user_id else f"@{name}"
