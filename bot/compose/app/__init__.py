"""The composition root: builds the bot (store, chat, domain, engine, workers) and serves HTTP.

Nothing below imports this package.  Its public modules: ``bot`` (``build_bot`` and ``Bot``, the
wired services), ``serve`` (the ``serve`` command: HTTP and the workers), ``http`` (the ASGI app),
``workers`` (the background loop), ``guard_child`` (``incident-bot guard-process``: the admission
webhook in the process ``serve`` starts for it) and ``logs`` (logging set-up).  The rest wires one capability
each (webhooks, paging, probing, admission, evidence, followups, the web board).
"""

__all__ = ["bot", "guard_child", "http", "logs", "serve", "workers"]
