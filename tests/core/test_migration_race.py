"""Replicas starting together on an empty database: every one of them comes up."""

from __future__ import annotations

import threading

from bot.core.store import migrate
from bot.core.store.db import Database


def test_three_replicas_migrating_an_empty_database_at_once_all_start(postgres_url: str) -> None:
    for trial in range(3):
        url = postgres_url if trial == 0 else _fresh(postgres_url, trial)
        dbs = [Database(url) for _ in range(3)]
        start = threading.Barrier(len(dbs))
        failures: list[BaseException] = []

        def replica(db: Database) -> None:
            start.wait()
            try:
                migrate.upgrade(db)
            except BaseException as exc:  # noqa: BLE001 (the test reports what a replica died of)
                failures.append(exc)

        threads = [threading.Thread(target=replica, args=(db,)) for db in dbs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert failures == []
        assert {migrate.current_revision(db) for db in dbs} == {migrate.head_revision()}
        for db in dbs:
            db.dispose()


def _fresh(url: str, trial: int) -> str:
    """Another empty database on the same server (dropped with the server at session end)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_t{trial}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)
