"""The base of every settings section, and the vocabularies several sections share.

Sections forbid unknown keys (a typo in the YAML file stops the bot at start, naming the key) and
validate on assignment, so a value changed in a test or at run time is checked like one read from
the file.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr

SEVERITIES = ("sev1", "sev2", "sev3")
STAGES = ("notify", "diagnose", "mitigate")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def iana_zone(value: str) -> str:
    """Refuse an unknown time-zone name at start, not at the first hand-over that needs it."""
    from zoneinfo import ZoneInfo

    if value.strip().upper() != "UTC":
        try:
            ZoneInfo(value)
        except Exception:
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)") from None
    return value


def secret(value: SecretStr | None) -> str | None:
    """The plain value of an optional secret, read only where it is sent (never logged)."""
    return value.get_secret_value() if value is not None else None
