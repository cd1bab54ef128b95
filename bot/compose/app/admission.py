"""Wiring of the admission guard: its TLS listener, its worker, its metrics and its chat verb.

The kube-apiservers call ``POST /admission/{cluster}`` on a listener of its own (TLS with the
certificate in ``guard.tls_cert_path``; with ``guard.client_ca_path`` they must present a client
certificate that CA signed, so nobody else can feed the breaker's counters). The decision itself
never touches the database (``bot.domain.guard.decide``); ``GuardWorker`` reads the state the decisions
need, stores new breaker trips (opening an incident through the alert ingestor, T0 at the burst's
first delete) and writes denials on the incidents' timelines in batches.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import threading
from collections import Counter
from typing import Any

import uvicorn
from prometheus_client.core import Metric
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.chat import handlers_guard
from bot.core.errors import BadInput, IncidentBotError
from bot.domain.guard.breaker import EVERYONE, Trip
from bot.domain.guard.count_store import publish_counts
from bot.domain.guard.decide import GUARD, Denial, Guard
from bot.domain.guard.review import answer, parse_review
from bot.domain.guard.state import load_state
from bot.core.store import timeline
from bot.domain.incidents.alert_payload import parse_notification
from bot.core.store.db import insert_once
from bot.core.store.models import Alert, GuardBreaker
from bot.chat.plugin import ChatHost
from bot.core.plugins import Extra
from bot.compose.app.guard_process import GuardProcess, decision_metrics, process_metrics, report_of
from bot.compose.app.webhooks import ALERTS

log = logging.getLogger(__name__)
ALERTNAME = "KubeMassDeletionBlocked"
COMPONENT = "mass-deletion"  # its own incident, not joined to an open apiserver incident of the cluster
# what a database that is down or slow raises (the worker keeps going; the guard's state ages)
DATABASE_TROUBLE = (SQLAlchemyError, IncidentBotError, OSError)
ORPHAN_SECONDS = 30  # a stored trip without its incident this long: its replica stopped; any replica finishes it
UNLINKED_DENIALS_SECONDS = 120  # breaker denials wait this long for their incident, then are only counted


def known_clusters(settings: Any) -> set[str]:
    return {*settings.clusters, settings.default_cluster}


def build_admission_app(bot: Any, guard: Guard) -> Starlette:
    clusters = known_clusters(bot.settings)

    async def admission(request: Request) -> Response:
        cluster = request.path_params["cluster"]
        if cluster not in clusters:
            return JSONResponse({"error": f"unknown cluster `{cluster[:64]}` in the webhook URL; expected one of "
                                          f"{', '.join(sorted(clusters))} (/admission/CLUSTER)."}, status_code=400)
        try:
            review = parse_review(await request.body())
        except BadInput as exc:
            guard.counts[(cluster, "invalid", "malformed")] += 1
            return JSONResponse({"error": exc.message}, status_code=400)
        decision = guard.decide(cluster, review)
        warning = f"would be denied (audit mode): {decision.message}" if decision.decision == "would-deny" else ""
        return JSONResponse(answer(review.uid, decision.allowed, decision.message, warning=warning))

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"no such endpoint: {request.method} {request.url.path} "
                                      f"(the guard answers POST /admission/CLUSTER)"}, status_code=404)

    return Starlette(routes=[Route("/admission/{cluster}", admission, methods=["POST"])],
                     exception_handlers={404: not_found, 405: not_found})


def alert_for(trip: Trip) -> dict[str, Any]:
    """The trip as an Alertmanager v4 notification: the ingestor opens (or joins) the incident, T0 the first delete."""
    culprit = trip.culprit
    fingerprint = hashlib.sha256(f"{trip.cluster}/{trip.resource}/{trip.client}/{trip.first_at.isoformat()}"
                                 .encode()).hexdigest()[:16]
    scope = "cluster-wide" if trip.client == EVERYONE else "per client"
    summary = (f"mass deletion of {trip.resource} by {culprit}: {trip.threshold} deletes within "
               f"{trip.window_seconds:g}s ({scope}); the admission guard denies further deletes")
    alert = {"status": "firing", "startsAt": trip.first_at.isoformat(), "endsAt": "0001-01-01T00:00:00Z",
             "fingerprint": fingerprint, "generatorURL": "",
             "labels": {"alertname": ALERTNAME, "cluster": trip.cluster, "component": COMPONENT,
                        "severity": "critical", "client": culprit, "resource": trip.resource,
                        "scope": "client" if trip.client != EVERYONE else "cluster",
                        "threshold": str(trip.threshold)},
             "annotations": {"summary": summary}}
    return {"version": "4", "status": "firing", "receiver": "incident-bot-guard",
            "groupKey": f"guard/{trip.cluster}/{trip.resource}/{trip.client}", "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "", "truncatedAlerts": 0, "alerts": [alert]}


class GuardWorker:
    """Stores new trips, refreshes the guard's state, writes denials on timelines (in that order)."""

    name = "admission-guard"

    def __init__(self, bot: Any, guard: Guard) -> None:
        self.bot = bot
        self.guard = guard
        self.interval = bot.settings.guard.refresh_seconds
        self.dropped = 0  # breaker denials whose incident never opened in time (counted, not recorded)

    def tick(self) -> None:
        self.store_trips()
        self.publish()
        self.refresh()
        self.flush_denials()

    def publish(self) -> None:
        """This replica's new delete counts, for the other replicas' breakers (retried when the database fails)."""
        now = self.bot.clock.now()
        counts = self.guard.breaker.take_counts(now)
        if not counts:
            return
        try:
            with self.bot.db.session() as session:
                publish_counts(session, self.guard.replica, counts, now, self.bot.settings.guard.breaker.window_seconds)
        except DATABASE_TROUBLE as exc:  # the others count without these meanwhile; this replica still does
            log.warning("admission guard: could not publish %d delete counts (%s); retrying", len(counts),
                        type(exc).__name__)
            self.guard.breaker.recount(counts)

    def refresh(self) -> None:
        now = self.bot.clock.now()
        try:
            with self.bot.db.reading() as session:
                state = load_state(session, self.bot.settings.guard, now, self.guard.replica)
        except DATABASE_TROUBLE as exc:  # the database is down: the state ages and the guard answers allow
            log.warning("admission guard: could not read its state (%s); answering allow once it is stale",
                        type(exc).__name__)
            return
        self.guard.use_state(state)
        orphans = {s.row_id for s in state.breakers
                   if s.incident_id is None and (now - s.tripped_at).total_seconds() > ORPHAN_SECONDS}
        for trip in self.guard.breaker.tripped():  # stored by a replica that stopped before opening the incident
            if trip.row_id in orphans:
                self.guard.breaker.retry(trip)

    def store_trips(self) -> None:
        for trip in self.guard.breaker.take_new():
            try:
                self._store(trip)
            except DATABASE_TROUBLE as exc:
                log.warning("admission guard: could not store a breaker trip (%s); retrying", type(exc).__name__)
                self.guard.breaker.retry(trip)

    def _store(self, trip: Trip) -> None:
        """Claim the trip in the database, open its incident, record it: each step safe to repeat.

        Replicas tripping the same key together race for the one open row (a partial unique index);
        the loser adopts the winner's row and opens nothing, so the incident opens once.
        """
        if trip.row_id is None and not self._claim(trip):
            return
        if trip.incident_id is not None:
            return
        incident_id = self._open_incident(trip)
        now = self.bot.clock.now()
        with self.bot.db.session() as session:
            row = session.get(GuardBreaker, trip.row_id)
            if row is not None and row.incident_id is None:
                row.incident_id = incident_id
                session.add(row)
            trip.incident_id = incident_id
            if incident_id is not None:
                who = "all clients" if trip.client == EVERYONE else trip.client
                timeline.record(session, incident_id, "guard.breaker.tripped",
                                f"admission guard: mass-deletion breaker tripped on {trip.cluster}: {trip.culprit} "
                                f"deleted {trip.threshold} {trip.resource} within {trip.window_seconds:g}s from "
                                f"{trip.first_at.isoformat(timespec='seconds')}; deletes by {who} are denied until "
                                f"the commander runs `/incident guard lift`",
                                at=now, actor="admission-guard", source="guard",
                                dedupe_key=f"guard.breaker.tripped:{trip.row_id}",
                                data={"client": trip.culprit, "scope": trip.client, "resource": trip.resource,
                                      "threshold": trip.threshold, "first_delete_at": trip.first_at.isoformat()})

    def _claim(self, trip: Trip) -> bool:
        """Store the trip as the key's open breaker; False (adopting the stored one) if another replica did first."""
        with self.bot.db.session() as session:
            row = GuardBreaker(cluster=trip.cluster, client=trip.client, resource=trip.resource,
                               first_delete_at=trip.first_at, tripped_at=trip.tripped_at, threshold=trip.threshold)
            if insert_once(session, row):
                trip.row_id = row.id
                return True
            stored = session.execute(select(GuardBreaker).where(
                col(GuardBreaker.cluster) == trip.cluster, col(GuardBreaker.resource) == trip.resource,
                col(GuardBreaker.client) == trip.client, col(GuardBreaker.lifted_at).is_(None))).scalars().first()
            if stored is None:  # lifted between the insert and the read: claim again next tick
                self.guard.breaker.retry(trip)
                return False
            trip.row_id, trip.incident_id = stored.id, stored.incident_id
            trip.first_at, trip.threshold = stored.first_delete_at, stored.threshold
            return False

    def _open_incident(self, trip: Trip) -> int | None:
        """Ingest the trip's alert; a repeat (after a crash, or by a second replica) finds the incident it opened."""
        ingestor = self.bot.services.extras.need(ALERTS)
        notification = alert_for(trip)
        result = ingestor.ingest(parse_notification(notification))
        incident_id = (result.opened or list(result.joined) or [None])[0]
        if incident_id is None:
            with self.bot.db.reading() as session:
                incident_id = session.execute(select(col(Alert.incident_id)).where(
                    col(Alert.fingerprint) == notification["alerts"][0]["fingerprint"])).scalars().first()
        return incident_id

    def flush_denials(self) -> None:
        denials = self.guard.take_denials()
        if not denials:
            return
        now = self.bot.clock.now()
        by_incident: dict[int, list[Denial]] = {}
        waiting = []
        for d in denials:
            incident_id = d.incident_id or (d.trip.incident_id if d.trip is not None else None)
            if incident_id is not None:
                by_incident.setdefault(incident_id, []).append(d)
            elif (now - d.at).total_seconds() < UNLINKED_DENIALS_SECONDS:
                waiting.append(d)
            else:
                self.dropped += 1
        try:
            with self.bot.db.session() as session:
                for incident_id, batch in by_incident.items():
                    timeline.record(session, incident_id, "guard.denied", denial_summary(batch), at=now,
                                    actor="admission-guard", source="guard",
                                    data={"denied": len(batch), "since": batch[0].at.isoformat(),
                                          "by": [{"user": u, "what": w, "reason": r, "count": n}
                                                 for (u, w, r), n in _grouped(batch).most_common(20)]})
        except DATABASE_TROUBLE as exc:
            log.warning("admission guard: could not record %d denials (%s); retrying", len(denials), type(exc).__name__)
            waiting = denials
        self.guard.requeue(waiting)


def _grouped(batch: list[Denial]) -> Counter[tuple[str, str, str]]:
    return Counter((d.user, " ".join(d.what.split()[:2]), d.reason) for d in batch)


def denial_summary(batch: list[Denial]) -> str:
    """One line per batch: ``admission guard denied 37 writes since 12:00:01: 37 DELETE pods by X (breaker)``."""
    parts = [f"{n} {what} by {user} ({reason})" for (user, what, reason), n in _grouped(batch).most_common(5)]
    return (f"admission guard denied {len(batch)} write{'s' if len(batch) != 1 else ''} since "
            f"{batch[0].at.strftime('%H:%M:%S')}: " + "; ".join(parts))


def guard_metrics(guard: Guard) -> list[Metric]:
    report = report_of(guard, listening=True)
    return decision_metrics(report.decisions, report.breakers_open)


class TlsListener:
    """uvicorn with TLS in its own thread: the listener the apiservers call."""

    def __init__(self, app: Starlette, settings: Any) -> None:
        guard = settings.guard
        self.config = uvicorn.Config(app, host=guard.host, port=guard.port, log_level="warning", lifespan="off",
                                     log_config=None, ssl_certfile=guard.tls_cert_path, ssl_keyfile=guard.tls_key_path,
                                     ssl_ca_certs=guard.client_ca_path,
                                     ssl_cert_reqs=ssl.CERT_REQUIRED if guard.client_ca_path else ssl.CERT_NONE)
        self.server = uvicorn.Server(self.config)
        # serve owns signals: uvicorn installs its handlers only when it runs in the main thread
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.server.run, name="admission-tls", daemon=True)
        self.thread.start()

    @property
    def started(self) -> bool:
        return bool(self.server.started)

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)


GUARD_APP: Extra[Starlette] = Extra("guard_app", "bot.compose.app.admission")  # the webhook's own ASGI app
GUARD_LISTENER: Extra[TlsListener] = Extra("guard_listener", "bot.compose.app.admission")  # its TLS port
GUARD_PROCESS: Extra[GuardProcess] = Extra("guard_process", "bot.compose.app.admission")  # guard.own_process


def register(bot: ChatHost) -> None:
    settings = bot.settings.guard
    handlers_guard.register(bot.dispatcher)
    if not settings.enabled:
        return
    if settings.own_process and settings.tls_cert_path and settings.tls_key_path:
        process = GuardProcess(bot.settings)  # the listener and its worker live in the child
        bot.services.extras.put(GUARD_PROCESS, process)
        bot.metric_sources.append(lambda b: process_metrics(process))
        bot.on_start.append(process.start)
        bot.on_stop.append(process.stop)
        return
    guard = Guard(settings, bot.clock)
    bot.services.extras.put(GUARD, guard)
    bot.workers.append(GuardWorker(bot, guard))
    bot.metric_sources.append(lambda b: guard_metrics(guard))
    app = build_admission_app(bot, guard)
    bot.services.extras.put(GUARD_APP, app)
    if settings.tls_cert_path and settings.tls_key_path:
        listener = TlsListener(app, bot.settings)
        bot.services.extras.put(GUARD_LISTENER, listener)
        bot.on_start.append(listener.start)
        bot.on_stop.append(listener.stop)
    else:
        log.warning("admission guard enabled without guard.tls_cert_path/tls_key_path: the apiservers cannot "
                    "call it (they speak TLS only)")
