"""The bot's configuration: one YAML file, every value overridable from the environment.

The package's public surface is what nearly every caller needs: ``Settings``, ``load_settings``
and ``secret``. The sections live in modules by concept (``budgets``, ``people``, ``detection``,
``clusters``, ``remediation``, ``surfaces``, ``guard``); import a section from its module.
How the file and the environment are merged and validated is in ``loading``.
"""

from bot.core.config.base import secret
from bot.core.config.loading import load_settings
from bot.core.config.settings import Settings

__all__ = ["Settings", "load_settings", "secret",
           # the section modules (``base`` holds what several sections share, e.g. SEVERITIES)
           "base", "budgets", "clusters", "detection", "guard", "people", "remediation", "surfaces"]
