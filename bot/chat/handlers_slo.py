"""``/incident slo``: the error budget left per cluster and objective (customer probes).

Read from the bot's own database (the probes' hourly tallies), so it answers while the
cluster's Prometheus is down. ``--cluster`` narrows to one cluster, ``--window`` sets the
budget's window (default 30 days, as the objectives are stated).
"""

from __future__ import annotations

from datetime import timedelta

from bot.chat.dispatcher import ChatContext, Dispatcher
from bot.chat.grammar import Command
from bot.chat.messages import Bullets, Heading, Reply
from bot.domain.incidents.search import parse_since
from bot.domain.slo.budgets import budgets


def slo(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    now = d.services.clock.now()
    window_text = cmd.options.get("window") or "30d"
    window = now - parse_since(window_text, now, field="window")
    if window <= timedelta(0):
        return Reply.failure(f"--window `{window_text}` must be an age such as 24h, 7d or 30d.")
    cluster = cmd.options.get("cluster")
    with d.services.db.session() as session:
        rows = budgets(session, now, window=window, cluster=cluster)
    where = f" on {cluster}" if cluster else ""
    if not rows:
        return Reply.line(f"No probe results{where} in the last {window_text}: no customer probes are configured "
                          f"(probes.clusters.NAME.customer_probes) or none has run yet.", ephemeral=True)
    head = f"Error budgets{where}, last {window_text}"
    lines = tuple(b.line() for b in rows)
    return Reply(text=f"{head}: " + " | ".join(lines), blocks=[Heading(head), Bullets(lines)], ephemeral=True)


def register(dispatcher: Dispatcher) -> None:
    dispatcher.register("slo", slo)
