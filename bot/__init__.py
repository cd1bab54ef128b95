"""incident-bot: a ChatOps incident-response bot for Kubernetes control planes.

The packages are layers (docs/design.md; the import-linter contracts in pyproject.toml check
them): ``app``, ``cli`` and ``sandbox`` compose everything; ``chat`` is the grammar and the chat
surfaces; ``export``, ``diagnosis``, ``incidents``, ``slo`` and ``guard`` are the domain, in that
order; ``store``, ``config``, ``clock``, ``errors`` and ``binaries`` are persistence and primitives;
``plugins`` types the extension seam (``register(bot)``, the capabilities plugins share).
Each package's ``__init__`` names its public surface in ``__all__``: names, or the modules others
may import (tests/core/test_public_surfaces.py holds every caller outside a package to it).
"""

__all__ = ["app", "binaries", "chat", "cli", "clock", "config", "diagnosis", "errors", "export", "guard",
           "incidents", "plugins", "sandbox", "slo", "store"]
