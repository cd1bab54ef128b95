"""incident-bot: a ChatOps incident-response bot for Kubernetes control planes.

The folders are the layers (docs/design.md; the import-linter contracts in pyproject.toml check
them), outermost first:

- ``compose``: what composes and starts the bot (``cli`` > ``sandbox`` > ``app``);
- ``integrations.adapters`` (a top-level package): the Slack adapter;
- ``chat``: the grammar, the handlers, the chat surfaces;
- ``playbooks`` (a top-level package): declared, checkpointed remediation;
- ``domain``: ``export`` > ``diagnosis`` > ``incidents`` > ``slo`` | ``guard``;
- ``integrations.clients`` (a top-level package): clients of the outside world;
- ``core``: the store, settings, the extension seam's types, the clock, errors, binaries.

Each package's ``__init__`` names its public surface in ``__all__``: names, or the modules others
may import (tests/core/test_public_surfaces.py holds every caller outside a package to it).
"""

__all__ = ["chat", "compose", "core", "domain"]
