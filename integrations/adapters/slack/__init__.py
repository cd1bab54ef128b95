"""The Slack adapter: the Bolt app, Block Kit, and the Slack outbox sender.

Above the chat layer, like the console: it turns the chat layer's neutral messages into Block Kit
and Slack's events into command lines.  The one public module is ``extension``: its ``register``
is how the composition root plugs Slack in (``integrations.adapters.slack.extension:register`` in
``extensions``); the rest (app, listeners, commands, deliverer, blockkit, modal, people, homes,
identity, web) is wired from there.
"""

__all__ = ["extension"]
