"""The Directory's lookups through the bot token: ``users.lookupByEmail`` and ``users.info``.

Both need the ``users:read.email`` scope (``users:read`` for users.info).  A
person Slack does not know (``users_not_found``, ``user_not_found``) is a
miss; a refusal such as ``missing_scope`` is a miss too, logged once, so a
misconfigured app still runs with plain @names.  A rate limit or an outage
while rendering an outgoing message propagates (the outbox retries the
message); while naming the author of a command it becomes ``LookupFailed``
(the command runs, the author is named by their id this once).
"""

from __future__ import annotations

import logging

from bot.chat.delivery import RetryLater
from integrations.adapters.slack.identity import Lookup, LookupFailed
from integrations.adapters.slack.web import SlackRefused, SlackWeb

log = logging.getLogger(__name__)
NOT_FOUND = {"users_not_found", "user_not_found"}


def _refused(method: str, exc: SlackRefused, warned: set[str]) -> None:
    if exc.code not in NOT_FOUND and exc.code not in warned:
        warned.add(exc.code)
        log.warning("%s refused (%s): people are shown by name, not mentioned, until it works", method, exc.code)


def by_email(web: SlackWeb) -> Lookup:
    warned: set[str] = set()

    def lookup(email: str) -> str | None:
        try:
            user = web.call("users.lookupByEmail", email=email).get("user") or {}
        except SlackRefused as exc:
            _refused("users.lookupByEmail", exc, warned)
            return None
        return user.get("id") if not user.get("deleted") else None

    return lookup


def email_of_id(web: SlackWeb) -> Lookup:
    warned: set[str] = set()

    def lookup(user_id: str) -> str | None:
        try:
            user = web.call("users.info", user=user_id).get("user") or {}
        except SlackRefused as exc:
            _refused("users.info", exc, warned)
            return None
        except RetryLater as exc:
            raise LookupFailed(str(exc)) from None
        return (user.get("profile") or {}).get("email")

    return lookup
