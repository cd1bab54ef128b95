"""Hand-written SQL on the session's own DBAPI connection, for the statements a webhook delivery runs.

Why: on SQLite a small statement takes about 20 µs in the database and about
250 µs in SQLAlchemy around it (the ORM session, the compiled-cache lookup,
the execution context, bind and result processing).  The alert ingestion runs
about ten per delivery, so SQLAlchemy, not the database, bounded a storm's
throughput (``benchmarks/bench_ingest.py``).  These statements run on the
connection the session's transaction already holds: they commit and roll back
with it, and SQLite's ``BEGIN IMMEDIATE`` has been issued before the first one.

Values cross as the column types would convert them (``UTCDateTime``: naive UTC
text on SQLite, aware on PostgreSQL; ``JSON``: its text), so a row written here
reads back through the ORM exactly as one written there
(``tests/core/test_raw_sql.py``).  SQL is written with ``?`` placeholders and
given ``%s`` ones for psycopg; it must hold no other ``?`` or ``%``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy.exc import DBAPIError, StatementError
from sqlmodel import Session

from bot.core.clock import utc


Statement = tuple[str, Sequence[Any]]  # SQL with ``?`` placeholders, its parameters


class RawSql:
    """A cursor on the transaction of ``session`` (``RawSql.of``: one per transaction, never kept beyond it)."""

    def __init__(self, session: Session) -> None:
        connection = session.connection()  # begins the session's transaction if it has not begun
        self._connection = connection
        self.sqlite = connection.dialect.name == "sqlite"
        self._cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]  # an open connection always has one
        self._times: dict[datetime, Any] = {}  # a storm's rows share a few instants (now, startsAt)
        self._texts: dict[datetime, str] = {}

    @classmethod
    def of(cls, session: Session) -> RawSql:
        """The transaction's cursor, made once: asking the session for its connection costs more than a statement."""
        transaction = session.get_transaction()
        cached = session.info.get(_CACHE)
        if transaction is not None and cached is not None and cached[0] is transaction:
            return cached[1]
        raw = cls(session)
        session.info[_CACHE] = (session.get_transaction(), raw)  # the transaction the cursor's connection serves
        return raw

    def _sql(self, sql: str) -> str:
        return sql if self.sqlite else sql.replace("?", "%s")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; the rows it returns (none for a write without RETURNING)."""
        with self._driver_errors(sql):
            self._cursor.execute(self._sql(sql), tuple(params))
            return list(self._cursor.fetchall()) if self._cursor.description else []

    def batch(self, statements: Sequence[Statement], *, commit: bool = False) -> list[list[tuple[Any, ...]]]:
        """Run several statements in order; the rows each returns.

        On PostgreSQL they travel together in pipeline mode: one round trip for all of them (and
        for the ``BEGIN`` psycopg sends before the transaction's first statement). The server still
        runs them one after another, each with its own snapshot, so a read sent after a lock sees
        what committed before the lock was granted. The first error fails the whole batch (the
        server skips the rest), and the transaction with it.

        ``commit``: on PostgreSQL the transaction's ``COMMIT`` travels with them, so these must be
        its last statements and the ORM must hold nothing unflushed (the session's own commit then
        finds nothing to do); elsewhere the session commits as usual.
        """
        ending = commit and not self.sqlite
        if self.sqlite or (len(statements) < 2 and not ending):
            return [self.rows(sql, params) for sql, params in statements]
        if ending:
            statements = [*statements, ("COMMIT", ())]
        connection = self._cursor.connection
        cursors = [connection.cursor() for _ in statements]
        try:
            with self._driver_errors("; ".join(sql for sql, _ in statements)):
                with connection.pipeline():
                    for cursor, (sql, params) in zip(cursors, statements):
                        cursor.execute(self._sql(sql), tuple(params))
                answers = [list(cursor.fetchall()) if cursor.description else [] for cursor in cursors]
            return answers[:-1] if ending else answers
        finally:
            for cursor in cursors:
                cursor.close()

    def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """One statement for each row of parameters (a write without RETURNING)."""
        with self._driver_errors(sql):
            self._cursor.executemany(self._sql(sql), [tuple(r) for r in rows])

    @contextmanager
    def _driver_errors(self, sql: str) -> Iterator[None]:
        try:
            yield
        except self._connection.dialect.loaded_dbapi.Error as exc:
            raise self._translated(exc, sql) from exc

    def _translated(self, exc: Any, sql: str) -> StatementError:
        """The driver's error as SQLAlchemy raises it for its own statements.

        Callers tell "the database is down or restarting" (``OperationalError``: the webhook
        answers 503, which Alertmanager retries) from a bug (500) by SQLAlchemy's classes, and a
        lost connection must be dropped from the pool, not handed to the next transaction.
        Parameters stay out of the message: they hold alert labels and notices.
        """
        dialect = self._connection.dialect
        lost = dialect.is_disconnect(exc, self._connection.connection.dbapi_connection, self._cursor)
        if lost:
            self._connection.invalidate(exc)
        return DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True,
                                   connection_invalidated=lost, dialect=dialect)

    # -- values, converted as the column types convert them ------------------------------
    def time(self, value: datetime | None) -> Any:
        """A ``UTCDateTime`` parameter (converted once per instant and transaction)."""
        if value is None:
            return None
        known = self._times.get(value)
        if known is None:
            as_utc = utc(value)
            known = as_utc.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") if self.sqlite else as_utc
            self._times[value] = known
        return known

    def json_time(self, value: Any) -> str:
        """``json.dumps``'s ``default`` for a document the server reads as timestamptz: ISO 8601 in UTC."""
        if not isinstance(value, datetime):
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        known = self._texts.get(value)
        if known is None:
            known = self._texts[value] = utc(value).isoformat()
        return known

    @staticmethod
    def read_time(value: Any) -> datetime | None:
        """A ``UTCDateTime`` column read back: aware UTC."""
        if value is None:
            return None
        if isinstance(value, str):
            return _read_text_time(value)
        return utc(value)

    @staticmethod
    def json(value: Any) -> str:
        """A ``JSON`` parameter (SQLAlchemy's JSON type stores ``json.dumps``'s text)."""
        return json.dumps(value)

    @staticmethod
    def read_json(value: Any) -> Any:
        """A ``JSON`` column read back (psycopg decodes it already; sqlite3 gives its text)."""
        return json.loads(value) if isinstance(value, (str, bytes)) else value


_CACHE = "incident_bot_raw_sql"


@lru_cache(maxsize=4096)
def _read_text_time(value: str) -> datetime:
    """SQLite's naive UTC text as aware UTC (a storm's rows return the same few instants)."""
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


def marks(count: int, width: int = 1) -> str:
    """``count`` groups of ``width`` placeholders: ``(?, ?), (?, ?)`` or, for width 1, ``?, ?``."""
    if width == 1:
        return ", ".join("?" * count)
    group = "(" + ", ".join("?" * width) + ")"
    return ", ".join([group] * count)
