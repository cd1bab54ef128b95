"""The outermost layer: what composes the bot and starts it.

``cli`` (the commands people type) over ``sandbox`` (the local control plane and drills)
over ``app`` (the composition root: settings, database, workers, HTTP, extensions).
Nothing below imports it (the layers contract in pyproject.toml).
"""

__all__ = ['app', 'cli', 'sandbox']
