"""The Slack side of the outbox: one outbox message becomes a few Web API calls.

Kinds (declared in bot/core/store/messages.py, written by the domain in the same
transaction as the facts; ``self.surface`` routes each to its handler):
- ``incident.card`` — the first one gives the incident its home (a channel of
  its own, or a thread in ``slack.incidents_channel``) and posts the card;
  later ones re-render the card from the database and ``chat.update`` it in
  place, at most once per ``slack.card_min_interval_seconds`` (the message is
  put back with ``not_before``; meanwhile the outbox coalesces further updates
  into it).
- ``timeline.post`` — one line in the card's thread.
- ``page`` — a DM to the paged person and a mention in the incident's home.
- ``notice`` — a line in the home (or the incidents channel).
- ``slack.reply`` (outbox channel "slack") — the answer to a command or press.
- ``page.close`` is not for Slack: it closes pages on the paging services.

A message that needs several calls records each finished step, so a retry
after a 429 in the middle never repeats the steps that got through.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from bot.chat import cards
from bot.chat.delivery import RetryLater
from bot.chat.dispatcher import Dispatcher
from bot.chat.handlers_core import card_for
from bot.chat.surface import Surface, handle, not_here
from bot.core.store.refs import ref_of
from bot.core.store.messages import IncidentCard, Message, Notice, Page, PageClose, SlackReply, TimelinePost
from bot.core.store.models import ChatBinding, OutboxMessage, ProcessedDelivery, TimelineEvent
from integrations.adapters.slack import dedupe, homes
from integrations.adapters.slack.blockkit import cut, message_of, mrkdwn
from integrations.adapters.slack.identity import Directory
from integrations.adapters.slack.web import SlackRefused, SlackWeb

log = logging.getLogger(__name__)

STALE_CARD = {"message_not_found", "cant_update_message", "edit_window_closed", "channel_not_found"}
METADATA_EVENT = "incident_bot_delivery"  # Slack message metadata: which outbox delivery posted it
GONE = {"channel_not_found", "not_in_channel", "is_archived", "restricted_action"}
INVITE_IGNORED = {"already_in_channel", "cant_invite_self", "user_not_found", "cant_invite", "user_is_restricted",
                  "ura_max_channels", "failed_for_some_users"}


class SlackDeliverer:
    name = "slack"

    def __init__(self, dispatcher: Dispatcher, web: SlackWeb, directory: Directory) -> None:
        self.dispatcher = dispatcher
        self.services = dispatcher.services
        self.settings = dispatcher.services.settings.slack
        self.web = web
        self.directory = directory
        self._current = threading.local()  # the message being delivered (two senders share this deliverer)
        self.surface = Surface("slack", [
            handle(IncidentCard, self._card),
            handle(TimelinePost, self._timeline),
            handle(Page, self._page),
            handle(Notice, self._notice),
            handle(SlackReply, self._reply),
            not_here(PageClose, "closing a page concerns the paging services only"),
        ])

    @property
    def db(self):
        return self.services.db

    def now(self) -> datetime:
        return self.services.clock.now()

    # -- the Deliverer protocol ----------------------------------------------
    def deliver(self, row: OutboxMessage, message: Message) -> dict[str, Any]:
        self._current.id, self._current.retried = row.id, row.attempts > 0
        try:
            return self.surface.deliver(row, message)
        except SlackRefused as exc:  # e.g. missing scope or revoked token: keep it until someone fixes it
            log.warning("Slack refused outbox message %s (%s): %s", row.id, row.kind, exc.code)
            raise RetryLater(str(exc)) from None

    # -- homes ---------------------------------------------------------------
    def ensure_home(self, incident_id: int) -> tuple[ChatBinding, bool]:
        """The incident's home with its card posted; True when the card was posted just now."""
        home = homes.binding(self.db, incident_id)
        if home is not None and home.card_ts:
            self._announce_elsewhere(home)
            return home, False
        card = card_for(self.dispatcher, incident_id)
        if self.settings.home == "channel":
            if home is None or not home.channel_id:
                home = self._create_channel(incident_id)
            self._invite(home)
            channel = home.channel_id
        else:
            channel = self.settings.incidents_channel
        posted = self._post(channel, step=f"card:{incident_id}",
                            **message_of(card, self.directory.id_of))
        home = homes.save(self.db, incident_id, channel_id=posted.get("channel") or channel, card_ts=posted["ts"],
                          thread_ts=posted["ts"], data={"card_at": self.now().isoformat()})
        self._announce_elsewhere(home)
        return home, True

    def _create_channel(self, incident_id: int) -> ChatBinding:
        incident = self.services.incidents.get(incident_id)
        for attempt in range(10):
            name = homes.channel_name(incident_id, incident.title, attempt)
            try:
                created = self.web.call("conversations.create", name=name, is_private=False)
            except SlackRefused as exc:
                if exc.code != "name_taken":
                    raise
                existing = self._channel_named(name)  # ours, if an earlier create's answer was lost
                if existing is None or existing.get("is_archived"):
                    continue
                log.info("channel #%s exists already (an earlier answer was lost?); using it", name)
                created = {"channel": existing}
            channel = created["channel"]
            return homes.save(self.db, incident_id, channel_id=channel["id"],
                              data={"own_channel": True, "name": channel.get("name", name), "invited": []})
        raise RetryLater(f"no free channel name for {ref_of(incident_id)}")

    def _channel_named(self, name: str) -> dict[str, Any] | None:
        """The public channel called ``name`` (conversations.list, every page), or None."""
        cursor = None
        for _ in range(100):  # 100 pages of 1,000 channels
            page = self.web.call("conversations.list", types="public_channel", exclude_archived=True, limit=1000,
                                 cursor=cursor)
            found = next((c for c in page.get("channels") or [] if c.get("name") == name), None)
            if found is not None:
                return dict(found)
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    def _wanted(self, incident_id: int) -> list[str]:
        """Who belongs in an incident's channel: the configured responders, its people, its declarer."""
        view = self.services.incidents.view(incident_id)
        names = list(self.settings.invite)
        for users in view.roles.values():
            names += users
        with self.db.session() as session:
            declared = session.execute(  # the person who opened it from chat (the first event is the opening)
                select(col(TimelineEvent.actor)).where(col(TimelineEvent.incident_id) == incident_id,
                                                       col(TimelineEvent.source).startswith("chat"))
                .order_by(col(TimelineEvent.id))
            ).scalars().first()
        if declared:
            names.append(declared)
        return self.directory.ids_of(names)

    def _invite(self, home: ChatBinding, extra: Sequence[str] = ()) -> None:
        if not (home.data or {}).get("own_channel"):
            return
        invited = set((home.data or {}).get("invited", []))
        missing = [u for u in [*self._wanted(home.incident_id), *extra] if u not in invited]
        missing = list(dict.fromkeys(missing))
        if not missing:
            return
        try:
            self.web.call("conversations.invite", channel=home.channel_id, users=",".join(missing), force=True)
        except SlackRefused as exc:
            if exc.code not in INVITE_IGNORED:
                raise
            log.info("inviting to %s: %s", home.channel_id, exc.code)
        homes.save(self.db, home.incident_id, data={"invited": sorted(invited | set(missing))})
        home.data = {**(home.data or {}), "invited": sorted(invited | set(missing))}

    def _announce_elsewhere(self, home: ChatBinding) -> None:
        """A channel-home incident is also announced in the incidents channel, once."""
        data = home.data or {}
        if not data.get("own_channel") or not self.settings.incidents_channel or data.get("announced"):
            return
        incident = self.services.incidents.get(home.incident_id)
        text = f"📣 {ref_of(incident.id)} {mrkdwn(incident.title)} ({incident.severity}) — <#{home.channel_id}>"
        self._post(self.settings.incidents_channel, step=f"card:{home.incident_id}:announced", text=text)
        homes.save(self.db, home.incident_id, data={"announced": True})

    def _post(self, channel: str | None, *, step: str, **message: Any) -> dict[str, Any]:
        """chat.postMessage tagged with a delivery key; a retried delivery first looks for its own post.

        The key (outbox message and step, or the incident for its card) rides in Slack's message
        metadata.  When an earlier attempt may have posted (its answer lost, or its sender died
        before recording it), the channel or thread is searched for the key and the post found
        there is the answer: people see each message once.  A channel not known yet (None: no
        incidents channel configured, a home not made) is Slack's to refuse, like any unknown channel.
        """
        key = step if step.startswith("card:") else f"{getattr(self._current, 'id', None)}:{step}"
        if getattr(self._current, "retried", False):
            found = self._posted(channel, message.get("thread_ts"), key)
            if found is not None:
                log.info("outbox %s was posted before (its answer was lost); not posting it again", key)
                return {"ok": True, "channel": channel, "ts": found, "found": True}
        message["metadata"] = {"event_type": METADATA_EVENT, "event_payload": {"key": key}}
        try:
            return self.web.call("chat.postMessage", channel=channel, **message)
        except SlackRefused as exc:
            if exc.code != "not_in_channel":
                raise
            self.web.call("conversations.join", channel=channel)
            return self.web.call("chat.postMessage", channel=channel, **message)

    def _posted(self, channel: str | None, thread_ts: str | None, key: str) -> str | None:
        """The ts of the bot's message carrying ``key`` among the latest in the channel or thread."""
        try:
            if thread_ts:
                page = self.web.call("conversations.replies", channel=channel, ts=thread_ts, limit=200,
                                     include_all_metadata=True)
            else:
                page = self.web.call("conversations.history", channel=channel, limit=200, include_all_metadata=True)
        except SlackRefused as exc:  # e.g. channel_not_found: nothing there to find
            log.info("looking for an earlier post of %s: %s", key, exc.code)
            return None
        for item in page.get("messages") or []:
            meta = item.get("metadata") or {}
            if meta.get("event_type") == METADATA_EVENT and (meta.get("event_payload") or {}).get("key") == key:
                return str(item.get("ts"))
        return None

    # -- kinds ---------------------------------------------------------------
    def _card(self, row: OutboxMessage, card: IncidentCard) -> dict[str, Any]:
        incident_id = card.incident_id
        home, fresh = self.ensure_home(incident_id)
        if fresh:
            return {"card": "posted", "channel": home.channel_id, "ts": home.card_ts}
        interval = self.settings.card_min_interval_seconds
        last = (home.data or {}).get("card_at")
        if interval and last:
            elapsed = (self.now() - datetime.fromisoformat(last)).total_seconds()
            if 0 <= elapsed < interval:
                raise RetryLater("card updated moments ago; coalescing", retry_after=interval - elapsed)
        body = message_of(card_for(self.dispatcher, incident_id), self.directory.id_of)
        try:
            self.web.call("chat.update", channel=home.channel_id, ts=home.card_ts, **body)
            result = {"card": "updated", "channel": home.channel_id, "ts": home.card_ts}
        except SlackRefused as exc:
            if exc.code not in STALE_CARD:
                raise
            posted = self._post(home.channel_id, step="card-repost", thread_ts=None, **body)
            homes.save(self.db, incident_id, card_ts=posted["ts"])
            result = {"card": "reposted", "channel": home.channel_id, "ts": posted["ts"], "why": exc.code}
        homes.save(self.db, incident_id, data={"card_at": self.now().isoformat()})
        self._invite(home)
        return result

    def _timeline(self, row: OutboxMessage, post: TimelinePost) -> dict[str, Any]:
        if row.incident_id is None:
            return {"skipped": "no incident"}
        with self.db.session() as session:
            event = session.get(TimelineEvent, post.event_id)
        if event is None:
            return {"skipped": "no such event"}
        home, _ = self.ensure_home(row.incident_id)
        posted = self._post(home.channel_id, step="timeline", thread_ts=home.thread_ts,
                            text=cut(mrkdwn(cards.event_line(event), self.directory.id_of), 3000))
        return {"ts": posted.get("ts")}

    def _page(self, row: OutboxMessage, page: Page) -> dict[str, Any]:
        user, reason = page.user, page.reason
        user_id = self.directory.id_of(user)
        result: dict[str, Any] = {}
        home = None
        if row.incident_id is not None:
            home, _ = self.ensure_home(row.incident_id)
        where = f" Incident home: <#{home.channel_id}>" if home is not None else ""
        dm_step = f"slack:outbox:{row.id}:dm"
        if user_id and not self._done(dm_step):
            opened = self.web.call("conversations.open", users=user_id)
            dm = opened["channel"]["id"]
            self._post(dm, step="dm", text=f"📟 You are paged: {mrkdwn(reason)}.{where}")
            self._mark(dm_step)
            result["dm"] = dm
        if home is not None:
            if user_id:
                self._invite(home, [user_id])
            thread = None if (home.data or {}).get("own_channel") else home.thread_ts
            posted = self._post(home.channel_id, step="mention", thread_ts=thread,
                                text=f"📟 {self.directory.mention(user)} is paged: {mrkdwn(reason)}")
            result["mention"] = posted.get("ts")
        if not user_id:
            result["note"] = f"no Slack id for {user}; add their e-mail to oncall.people (or their id to slack.users)"
        return result

    def _notice(self, row: OutboxMessage, notice: Notice) -> dict[str, Any]:
        text = mrkdwn(notice.text, self.directory.id_of)
        if row.incident_id is not None:
            home, _ = self.ensure_home(row.incident_id)
            thread = None if (home.data or {}).get("own_channel") else home.thread_ts
            return {"ts": self._post(home.channel_id, step="notice", thread_ts=thread,
                                     text=text).get("ts")}
        if self.settings.incidents_channel:
            return {"ts": self._post(self.settings.incidents_channel, step="notice", text=text).get("ts")}
        return {"skipped": "no incidents channel configured"}

    def _reply(self, row: OutboxMessage, reply: SlackReply) -> dict[str, Any]:
        body = dict(reply.message or {"text": "…"})
        if reply.response_url:
            try:
                return self.web.respond(reply.response_url, {
                    **body, "response_type": "ephemeral" if reply.ephemeral else "in_channel",
                    "replace_original": False})
            except SlackRefused as exc:  # expired (30 minutes, 5 uses): fall through to the Web API
                log.info("response_url refused (%s); answering through the Web API", exc.code)
        if reply.ephemeral and reply.channel and reply.user:
            try:
                self.web.call("chat.postEphemeral", channel=reply.channel, user=reply.user,
                              thread_ts=reply.thread_ts, **body)
                return {"ephemeral": True}
            except SlackRefused as exc:
                if exc.code not in {"channel_not_found", "not_in_channel", "user_not_in_channel"}:
                    raise
        if not reply.ephemeral and reply.channel:
            try:
                return {"ts": self._post(reply.channel, step="reply", thread_ts=reply.thread_ts, **body).get("ts")}
            except SlackRefused as exc:  # a channel the bot cannot post in: tell the person directly
                if exc.code not in GONE:
                    raise
        if not reply.user:
            return {"skipped": "nowhere to answer"}
        return {"ts": self._post(reply.user, step="reply-dm", **body).get("ts"), "dm": True}

    # -- steps of one message ------------------------------------------------
    def _done(self, key: str) -> bool:
        with self.db.session() as session:
            return session.get(ProcessedDelivery, key) is not None

    def _mark(self, key: str) -> None:
        dedupe.first_time(self.db, key, source="slack-outbox", now=self.now())
