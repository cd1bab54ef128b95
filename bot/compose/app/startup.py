"""What ``serve`` says about itself at start: one line an operator can check at a glance, and warnings.

The line names where the bot listens, which chat it uses, which database
(password hidden) and which clusters it guards, so that a misconfigured pod
is visible in the first line of its log.  The warnings catch Slack tokens
that are set but cannot be used the way the bot was started.
"""

from __future__ import annotations

from bot.core.config import Settings
from bot.core.store.db import redact_url


def chat_mode(settings: Settings, *, socket_mode: bool, slack_on: bool) -> str:
    """How people reach the bot: Slack Socket Mode, Slack HTTP, outgoing Slack messages only, or none."""
    if not slack_on:
        return "none"
    if socket_mode:
        return "Slack Socket Mode"
    if settings.slack.signing_secret:
        return "Slack HTTP (POST /slack/events)"
    return "Slack, outgoing messages only (no SLACK_SIGNING_SECRET and no --socket-mode: commands cannot reach the bot)"


def guarded_clusters(settings: Settings) -> list[str]:
    return sorted(set(settings.clusters) | set(settings.probes.clusters))


def startup_line(settings: Settings, *, host: str, port: int, socket_mode: bool, slack_on: bool) -> str:
    clusters = guarded_clusters(settings)
    return (f"incident-bot listening on http://{host}:{port}; "
            f"chat: {chat_mode(settings, socket_mode=socket_mode, slack_on=slack_on)}; "
            f"database: {redact_url(settings.database_url)}; "
            f"clusters: {', '.join(clusters) if clusters else 'none configured'}; "
            f"/api/*: {'bearer token required' if settings.api_token else 'no token (open to whoever reaches it)'}")


def unused_slack_settings(settings: Settings, *, socket_mode: bool) -> list[str]:
    """Slack secrets that are set but will not be used, each with what is missing."""
    slack = settings.slack
    out: list[str] = []
    if (slack.signing_secret or slack.app_token) and not slack.bot_token:
        out.append("SLACK_SIGNING_SECRET/SLACK_APP_TOKEN are set but SLACK_BOT_TOKEN is not: Slack is off")
    elif slack.bot_token and not (slack.signing_secret or slack.app_token):
        out.append("SLACK_BOT_TOKEN is set but neither SLACK_SIGNING_SECRET (HTTP mode) nor SLACK_APP_TOKEN "
                   "(--socket-mode) is: Slack is off")
    elif slack.bot_token and slack.app_token and not socket_mode:
        out.append("SLACK_APP_TOKEN is set but serve was started without --socket-mode: the Socket Mode "
                   "connection is not opened" + ("" if slack.signing_secret else
                                                 ", and without SLACK_SIGNING_SECRET no command reaches the bot"))
    return out
