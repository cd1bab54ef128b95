"""The chat layer: the ``/incident`` grammar, neutral messages, and the chat surfaces.

Above the domain, below the Slack adapter (which turns the neutral messages into Block Kit).
Public modules:

* ``dispatcher`` — ``Dispatcher``, ``Services``, ``ChatContext``: one command line in, replies out;
* ``grammar`` — the verbs, their usage and parsing; ``messages`` — ``Reply`` and the neutral blocks;
* ``cards`` — the incident card and timeline replies as neutral messages;
* ``delivery`` and ``surface`` — the outbox sender and the typed dispatch of outbox messages to a
  surface; ``console`` — the terminal chat;
* ``handlers_*`` — the verbs of one capability each; the composition root registers them;
* ``plugin`` — ``ChatHost``, what a plugin adding verbs may use of the bot (``bot.core.plugins.Host`` and more).
"""

__all__ = ["cards", "console", "delivery", "dispatcher", "grammar", "handlers_core", "handlers_diagnosis",
           "handlers_editing", "handlers_evidence", "handlers_export", "handlers_guard", "handlers_playbooks",
           "handlers_slo", "messages", "plugin", "surface"]
