"""Who is who: the bot's user names and Slack user ids.

The domain (rota, approvers, commanders) speaks of people by the names in the
configuration, so Slack and the console share them.  A name's Slack id is
found by its e-mail address (``oncall.people``, or the name itself when it is
an address) with ``users.lookupByEmail``; a Slack user who speaks is named by
the e-mail ``users.info`` gives.  Answers are kept for the process's life (a
miss for ``MISS_TTL_SECONDS``, so a newcomer is found soon).  ``slack.users``
stays as a hand-kept override.  A Slack user found neither way is known by
their id (``U0123ABC``), which then is the name to use in the configuration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime

from bot.core.config.surfaces import SlackSettings

SLACK_MENTION_RE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
SLACK_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
MISS_TTL_SECONDS = 600.0

Lookup = Callable[[str], "str | None"]  # e-mail -> Slack id (users.lookupByEmail); user id -> e-mail (users.info)


class LookupFailed(Exception):
    """A lookup could not be answered now (rate limit, Slack down): fall back, remember nothing."""


class Directory:
    def __init__(self, settings: SlackSettings, *, people: dict[str, str] | None = None,
                 by_email: Lookup | None = None, email_of_id: Lookup | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        self.by_name = {name.lstrip("@"): user_id for name, user_id in settings.users.items()}
        self.by_id = {user_id: name for name, user_id in self.by_name.items()}
        self.people = {name.lstrip("@"): email for name, email in (people or {}).items()}
        self.by_email = by_email
        self.email_of_id = email_of_id
        self.now = now
        self.misses: dict[str, datetime] = {}

    def _missed_lately(self, key: str) -> bool:
        at = self.misses.get(key)
        return at is not None and self.now is not None and (self.now() - at).total_seconds() < MISS_TTL_SECONDS

    def _remember(self, name: str, user_id: str | None, key: str) -> str | None:
        if user_id:
            self.by_name.setdefault(name, user_id)
            self.by_id.setdefault(user_id, name)
            self.misses.pop(key, None)
        elif self.now is not None:
            self.misses[key] = self.now()
        return user_id

    def name_of(self, user_id: str) -> str:
        """The bot's name for a Slack user: mapped, else by their e-mail, else their id."""
        if user_id in self.by_id or self.email_of_id is None or self._missed_lately(user_id):
            return self.by_id.get(user_id, user_id)
        try:
            email = self.email_of_id(user_id)
        except LookupFailed:
            return user_id
        name = next((n for n, e in self.people.items() if email and e.lower() == email.lower()), email)
        if name is None:
            self._remember(user_id, None, user_id)
            return user_id
        self._remember(name, user_id, user_id)
        return self.by_id[user_id]

    def id_of(self, name: str) -> str | None:
        """The Slack id of a bot user name, or None if there is no way to reach them."""
        name = name.lstrip("@")
        if name in self.by_name:
            return self.by_name[name]
        if SLACK_ID_RE.match(name):
            return name
        email = self.people.get(name) or (name if "@" in name else None)
        if email is None or self.by_email is None or self._missed_lately(email):
            return None
        return self._remember(name, self.by_email(email), email)

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
