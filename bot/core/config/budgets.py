"""The 1-5-10 clock's budgets: seconds from T0 for each stage, per severity."""

from __future__ import annotations


from pydantic import Field

from bot.core.config.base import Section


class StageBudgets(Section):
    """Seconds from T0 allowed for each stage of the 1-5-10 clock."""

    notify: float = Field(60, gt=0)
    diagnose: float = Field(300, gt=0)
    mitigate: float = Field(600, gt=0)


class Budgets(Section):
    default: StageBudgets = StageBudgets()
    sev1: StageBudgets | None = None
    sev2: StageBudgets | None = None
    sev3: StageBudgets | None = None
    warn_ratio: float = Field(0.8, gt=0, lt=1)

    def for_severity(self, severity: str) -> StageBudgets:
        return getattr(self, severity, None) or self.default
