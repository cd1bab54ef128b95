"""Wiring of evidence at T0 and change correlation: the workers, the chat verb, the card line.

Registered after ``bot.compose.app.diagnosis``: it reuses the diagnoser's per-cluster
clients (``RealBackends``) and procedure library (the Prometheus series kept
at T0 are the ones the incident's procedure names).  One ``ChangeWatcher``
per cluster with a kubeconfig; one ``EvidenceWorker`` for all incidents.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

from bot.compose.app.diagnosis import RealBackends, cluster_config
from bot.compose.app.probing import probe_clusters
from bot.chat import handlers_evidence
from bot.domain.diagnosis import changes as change_log
from bot.domain.diagnosis import templating
from bot.domain.diagnosis.service import incident_context
from bot.domain.diagnosis.t0_evidence import EvidenceKeeper, EvidenceWorker
from bot.core.store import timeline
from bot.core.store.models import Incident
from bot.chat.plugin import ChatHost
from bot.domain.diagnosis.service import DIAGNOSER
from bot.core.plugins import Extra

log = logging.getLogger(__name__)

EVIDENCE: Extra[EvidenceKeeper] = Extra("evidence", "bot.compose.app.evidence")



def _queries(bot: Any, diagnoser: Any) -> Any:
    """The PromQL of the procedure that fits an incident (templates rendered with its vars)."""

    def queries(incident: Incident) -> list[str]:
        with bot.db.reading() as session:
            context = incident_context(session, incident)
        procedure = diagnoser.choose(context)
        if procedure is None:
            return []
        scope = {"incident": context, "cluster": cluster_config(bot.settings, incident.cluster),
                 "vars": dict(procedure.vars)}
        out = []
        for check in procedure.checks:
            if check.kind != "promql":
                continue
            try:
                out.append(str(templating.render(check.params["query"], scope)))
            except Exception:  # a query that needs a check's answer cannot be asked before diagnosis
                continue
        return out

    return queries


def _announce_changes(bot: Any) -> Callable[[int, list[dict[str, Any]]], None]:
    """The nearest changes go on the timeline and the card ("changed before T0: ...")."""

    def announce(incident_id: int, items: list[dict[str, Any]]) -> None:
        top = [change_log.sentence(c) for c in items[:3]]
        with bot.services.incidents.transaction(incident_id) as (session, row):
            row.extra = {**(row.extra or {}), "changes_before_t0": top}
            session.add(row)
            timeline.record(session, incident_id, "evidence.changes", "changed before T0: " + "; ".join(top),
                            at=bot.clock.now(), actor="evidence", source="system",
                            data={"changes": items[:10]}, dedupe_key="evidence:changes")
            bot.services.incidents.queue_card(session, row, bot.clock.now())

    return announce


def watched_clusters(bot: Any) -> list[str]:
    names = set(bot.settings.clusters) | set(probe_clusters(bot.settings))
    return sorted(n for n in names if cluster_config(bot.settings, n).get("kubeconfig"))


def register(bot: ChatHost) -> None:
    handlers_evidence.register(bot.dispatcher)
    settings = bot.settings
    diagnoser = bot.services.extras.find(DIAGNOSER)
    if diagnoser is not None:  # looked up at call time: the same clients diagnosis uses
        backends: Any = lambda name: diagnoser.backends(name)  # noqa: E731
    else:
        backends = RealBackends(settings)
        bot.on_stop.append(backends.close)
    keeper = EvidenceKeeper(bot.db, settings, bot.clock, backends,
                            queries=_queries(bot, diagnoser) if diagnoser is not None else (lambda _: []),
                            on_changes=_announce_changes(bot))
    bot.services.extras.put(EVIDENCE, keeper)
    bot.workers.append(EvidenceWorker(keeper, interval=settings.evidence.interval_seconds))
    if not settings.evidence.watch:
        return
    clusters = watched_clusters(bot)
    for name in clusters:
        recorder = change_log.ChangeRecorder(bot.db, name, bot.clock)
        # one audit log file belongs to one cluster: read only when the bot guards exactly one
        audit = (change_log.AuditTail(bot.db, name, settings.evidence.audit_log)
                 if settings.evidence.audit_log and len(clusters) == 1 else None)
        lister = functools.partial(lambda n: backends(n).kubernetes, name)  # the client as diagnosis has it now
        bot.workers.append(change_log.ChangeWatcher(recorder, lister,
                                                    interval=settings.evidence.watch_interval_seconds, audit=audit))
