"""Persistence: the database, the tables, the migrations, and the append-only records on them.

The lowest layer with ``bot.core.config``, ``bot.core.clock`` and ``bot.core.errors``: everything may import it,
it imports nothing of the domain.  Public modules:

* ``db`` — ``Database`` (sessions, readings, the writer), ``insert_once``; ``migrate`` — the schema;
* ``models`` — the tables; ``states`` — the incident's state names and their groups;
* ``refs`` — ``INC-<id>``: the one place an incident reference is written and parsed;
* ``timeline`` — the append-only timeline every domain package writes facts to;
* ``outbox`` and ``messages`` — side effects queued in the fact's transaction, typed per kind; ``outbox_many`` —
  many messages coalesced in a few statements (a mass deadline, a storm's notices);
* ``group_commit`` — many small writes in one transaction (``batch_writer``: the same for asyncio callers,
  one writer thread); ``raw`` — hand-written SQL on the session's own cursor, for a storm's hot statements;
  ``ratelimits`` — shared rate limits; ``chunks`` — long id lists cut into statement-sized pieces.
"""

__all__ = ["batch_writer", "chunks", "db", "group_commit", "messages", "migrate", "models", "outbox", "outbox_many", "ratelimits", "raw",
           "refs", "states", "timeline"]
