"""The 1-5-10 clocks, budgets, on-call rotas and paging; the watcher and the re-pager.

Domain layer, below ``bot.domain.incidents`` (which calls the watcher after every move), so it never
imports incidents: it writes facts through ``bot.core.store.timeline`` and asks ``bot.core.store.states``
whether an incident is still active.  Public modules: ``clocks`` (a stage's verdict from stored
timestamps), ``budgets`` (probe SLOs), ``rota`` (who is on duty), ``paging`` (a page on every
configured channel), ``watcher`` (one incident's warnings, breaches, escalation), ``worker`` (the
watcher's background worker) and ``repage`` (unanswered pages repeated, then escalated).
``mass`` serves the worker only.
"""

__all__ = ["budgets", "clocks", "paging", "repage", "rota", "watcher", "worker"]
