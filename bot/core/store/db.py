"""Engine and transactions for SQLite (default) and PostgreSQL (several replicas).

SQLite is shared by threads (HTTP handlers, workers) and sometimes processes
(a console beside ``serve``), so it runs in WAL mode with a busy timeout and
every writing transaction starts with ``BEGIN IMMEDIATE``: a read-modify-write
on an incident can then never interleave with another writer.  Reads
(``Database.reading``) begin a plain deferred transaction instead: in WAL mode
they read a snapshot beside the writer and never queue behind it, so
``GET /api/incidents`` or ``/incident status`` answer while the watcher or a
storm writes.  On PostgreSQL the domain takes row locks (``SELECT ... FOR
UPDATE``) where it needs them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, IntegrityError, OperationalError
from sqlmodel import Session, create_engine

from bot.core.errors import ConfigError

READ_ONLY = "incident_bot_read_only"  # execution option: a transaction that only reads


IDLE_PING_SECONDS = 10.0  # a batch writer's connection is pinged only after sitting idle this long


def make_engine(url: str, *, echo: bool = False, ping: Literal["always", "when_idle"] = "always") -> Engine:
    """Create the engine for ``url`` with the pragmas this bot relies on.

    ``ping`` (PostgreSQL): ``"always"`` checks a pooled connection with a round trip at every
    checkout; ``"when_idle"`` only after it sat idle ``IDLE_PING_SECONDS`` (``_ping_when_idle``).
    """
    try:
        if url.startswith("sqlite"):
            engine = create_engine(
                url,
                echo=echo,
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            _configure_sqlite(engine)
        else:
            if ping == "when_idle":
                engine = create_engine(url, echo=echo, pool_size=2, max_overflow=2)
                _ping_when_idle(engine)
            else:
                engine = create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except Exception as exc:  # sqlalchemy raises several types for a bad URL
        raise ConfigError(f"INCIDENT_BOT_DATABASE_URL: cannot use {redact_url(url)!r}: {exc}") from exc
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let us issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection at checkout only if it sat idle: a busy writer's is known alive.

    The webhook's writer checks its connection out and in every few milliseconds during a storm;
    the pool's pre-ping was one round trip of the dozen in each batch, and the writer waits on
    round trips (a seventh of its time, ``benchmarks/bench_ingest.py``). A connection idle long
    enough for the server, a proxy or a firewall to have dropped it is still pinged, and one found
    dead is replaced before use (SQLAlchemy's pool retries a checkout that raises
    ``DisconnectionError``). One that dies while busy (the server restarts) fails its batch; the
    batch is retried request by request on a fresh connection (``group_commit.run_batch``), and a
    request that still fails is answered 503, which Alertmanager retries.
    """
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None:  # a new connection: it just answered
            return
        idle = time.monotonic() - idle_since
        if idle < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection idle for {idle:.0f} s did not answer") from exc


def redact_url(url: str) -> str:
    """A database URL with its password replaced, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


class Database:
    """The store handle the rest of the bot receives."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self._read_engine = self.engine.execution_options(**{READ_ONLY: True})
        # one thread writes batch after batch through this (the webhook's writer): its own small pool,
        # pinged only when idle (``_ping_when_idle``); SQLite has no connection to lose
        self._batch_engine = None if self.is_sqlite else make_engine(url, echo=echo, ping="when_idle")
        # SQLite has one writer; threads of this process queue here (woken the moment the writer
        # commits) instead of in SQLite's busy handler, which polls with sleeps of up to 100 ms
        self._writer = threading.RLock() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, *, batches: bool = False) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any exception.

        ``batches``: for a thread that writes one batch after another and retries a failed batch
        request by request (``batch_writer``, ``group_commit``): its connection is not pinged before
        each transaction.
        """
        engine = self._batch_engine if batches and self._batch_engine is not None else self.engine
        with self._writer or nullcontext(), Session(engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only transaction: never takes SQLite's write lock, never commits.

        Only for reads: closing the session ends the transaction without a
        commit (what is written inside is discarded) and leaves the rows read
        usable.  On SQLite a deferred transaction that starts writing may fail
        with "database is locked" instead of waiting, another reason not to.
        """
        with Session(self._read_engine, expire_on_commit=False) as session:
            yield session

    def check(self) -> None:
        """Fail fast with a clear sentence when the database is unreachable."""
        try:
            with self._read_engine.connect() as conn:  # a read: /readyz never waits for the writer
                conn.exec_driver_sql("SELECT 1")
        except OperationalError as exc:
            raise ConfigError(
                f"INCIDENT_BOT_DATABASE_URL: cannot connect to {redact_url(self.url)}: {exc.orig}"
            ) from exc

    def dispose(self) -> None:
        self.engine.dispose()
        if self._batch_engine is not None:
            self._batch_engine.dispose()


def insert_once(session: Session, row: Any) -> bool:
    """Insert ``row`` unless a unique constraint says it exists; False then.

    The insert runs in a savepoint so that losing a race with another replica
    (or a retried delivery) leaves the caller's transaction usable.
    """
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    return True
