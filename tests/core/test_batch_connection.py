"""The webhook writer's PostgreSQL connection: no ping while busy, a ping (and a new one) after idling.

A storm's batches follow each other every few milliseconds; a ping before each was a round
trip of a dozen. A connection that sat idle is still checked, so one the server dropped in
the meantime is replaced before a delivery is written on it.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.core.store import db as store_db
from bot.core.store.db import Database


def backend_pid(database: Database) -> int:
    with database.session(batches=True) as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_busy_writer_is_not_pinged_and_an_idle_one_dropped_by_the_server_is_replaced(
        postgres_url: str, postgres_admin_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    database = Database(postgres_url)
    pings: list[Any] = []
    engine = database._batch_engine  # the writer's own pool (PostgreSQL only)
    assert engine is not None
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(conn) or ping(conn))
    try:
        first = backend_pid(database)
        assert [backend_pid(database) for _ in range(5)] == [first] * 5  # one connection, batch after batch
        assert pings == []

        admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:  # the server (or a proxy) drops the idle connection
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        admin.dispose()
        monkeypatch.setattr(store_db, "IDLE_PING_SECONDS", 0.0)  # it has now been idle "long enough"

        replaced = backend_pid(database)  # the write goes through, on a new connection
        assert replaced != first and len(pings) == 1
    finally:
        database.dispose()
