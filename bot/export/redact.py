"""Secret redaction: a post-mortem is read by many, so no credential survives into it.

Evidence and notes are free text written at 3 a.m.; people paste curl lines
with bearer tokens, connection strings with passwords, kubeconfigs with
private keys.  Every string of the document goes through one compiled
pattern set before any format is rendered, and any mapping key that names a
secret (``password``, ``token``, ``authorization`` …) has its value replaced,
so Markdown, JSON and HTML are redacted alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MARK = "[REDACTED]"

# Patterns whose whole match is the secret.
_WHOLE = [
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)",
    r"\bxox[abposr]-[A-Za-z0-9-]{6,}",  # Slack bot/user/app-level tokens
    r"\bxapp-[A-Za-z0-9-]{6,}",  # Slack app-level (socket mode) tokens
    r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b",  # AWS access key ids
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",  # GitHub tokens
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWTs (service-account tokens)
]
# Patterns that keep a prefix (group "keep") and redact what follows it.
_PREFIXED = [
    r"(?P<keep>\b[Bb]earer\s+)[A-Za-z0-9._~+/=-]{6,}",
    r"(?P<keep>\b[Bb]asic\s+)[A-Za-z0-9+/=]{8,}",
    r"(?P<keep>\b[A-Za-z][\w.-]*://[^\s/:@]+:)[^\s@/]+(?=@)",  # user:password@ in URLs
    r"(?P<keep>(?i:\b(?:[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|credentials?|aws_secret_access_key))\b\s*[=:]\s*))(?:\"[^\"]*\"|'[^']*'|[^\s&,;\"']+)",
]
_SECRET_KEY = re.compile(
    r"^(?:.*[_-])?(?:password|passwd|pwd|secret|token|api_?key|access_?key|secret_?key|private_?key"
    r"|authorization|credentials?|signing_secret|cookie)$",
    re.IGNORECASE,
)
_NOT_SECRET_KEY = re.compile(r"^(?:plan_hash|token_count|tokens)$", re.IGNORECASE)


class Redactor:
    """Replaces secrets in strings and nested JSON-like values.

    ``literals`` are the configured secrets themselves (Slack tokens, the
    webhook token, the database password): they are redacted wherever they
    appear, whatever they look like.
    """

    def __init__(self, literals: Iterable[str] = (), extra_patterns: Iterable[str] = ()) -> None:
        whole = list(_WHOLE) + list(extra_patterns)
        exact = sorted({s for s in literals if s and len(s) >= 4}, key=len, reverse=True)
        whole += [re.escape(s) for s in exact]
        prefixed = [p.replace("(?P<keep>", f"(?P<keep{i}>") for i, p in enumerate(_PREFIXED)]
        self._keep_groups = [f"keep{i}" for i in range(len(_PREFIXED))]
        parts = [f"(?:{p})" for p in whole] + [f"(?:{p})" for p in prefixed]
        self._pattern = re.compile("|".join(parts), re.DOTALL)

    def _replace(self, match: re.Match[str]) -> str:
        groups = match.groupdict()
        keep = next((groups[g] for g in self._keep_groups if groups[g] is not None), "")
        return keep + MARK

    def text(self, value: str) -> str:
        if not value:
            return value
        return self._pattern.sub(self._replace, value)

    def value(self, value: Any) -> Any:
        """Redact every string inside a JSON-like value (returns a new value)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                if (isinstance(key, str) and _SECRET_KEY.match(key) and not _NOT_SECRET_KEY.match(key)
                        and item not in (None, "", True, False) and not isinstance(item, (dict, list))):
                    out[key] = MARK
                else:
                    out[key] = self.value(item)
            return out
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value
