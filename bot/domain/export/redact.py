"""Secret redaction: a post-mortem is read by many, so no credential survives into it.

Evidence and notes are free text written at 3 a.m.; people paste curl lines
with bearer tokens, connection strings with passwords, kubeconfigs with
private keys.  Every string of the document goes through one compiled
pattern set before any format is rendered, and any mapping key that names a
secret (``password``, ``token``, ``authorization`` …) has its value replaced,
so Markdown, JSON and HTML are redacted alike.
"""

from __future__ import annotations

import json
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


# Every pattern above needs one of these (lower-cased) substrings to match; a string holding
# none of them is returned untouched without running the big alternation (the common case).
_TRIGGERS = ("xox", "xapp-", "akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa", "ghp_", "gho_",
             "ghu_", "ghs_", "ghr_", "eyj", "bearer", "basic", "://", "pass", "pwd", "secret", "token", "key",
             "credential", "authorization", "cookie")


class Redactor:
    """Replaces secrets in strings and nested JSON-like values.

    ``literals`` are the configured secrets themselves (Slack tokens, the
    webhook token, the database password): they are redacted wherever they
    appear, whatever they look like.  ``extra_patterns`` are deployment
    specific regular expressions (matched against each string, and against
    the JSON text of a mapping when deciding whether to look inside it).

    Speed: a post-mortem may hold 50,000 events.  A mapping or string is
    first checked for trigger substrings (C-speed ``in`` on its lower-cased
    JSON text); only those that might hold a secret are walked and run
    through the full pattern, so the cost stays linear and small.
    """

    def __init__(self, literals: Iterable[str] = (), extra_patterns: Iterable[str] = ()) -> None:
        extra = list(extra_patterns)
        whole = list(_WHOLE) + extra
        exact = sorted({s for s in literals if s and len(s) >= 4}, key=len, reverse=True)
        whole += [re.escape(s) for s in exact]
        prefixed = [p.replace("(?P<keep>", f"(?P<keep{i}>") for i, p in enumerate(_PREFIXED)]
        self._keep_groups = [f"keep{i}" for i in range(len(_PREFIXED))]
        parts = [f"(?:{p})" for p in whole] + [f"(?:{p})" for p in prefixed]
        self._pattern = re.compile("|".join(parts), re.DOTALL)
        # literals as they appear raw and inside JSON text (quotes and backslashes escaped)
        self._literals = tuple({form for s in exact for form in (s, json.dumps(s, ensure_ascii=False)[1:-1])})
        self._extra = re.compile("|".join(f"(?:{p})" for p in extra), re.DOTALL) if extra else None

    def might_hold_secret(self, text: str) -> bool:
        lowered = text.lower()
        for trigger in _TRIGGERS:
            if trigger in lowered:
                return True
        for literal in self._literals:
            if literal in text:
                return True
        return bool(self._extra and self._extra.search(text))

    def _replace(self, match: re.Match[str]) -> str:
        groups = match.groupdict()
        keep = next((groups[g] for g in self._keep_groups if groups[g] is not None), "")
        return keep + MARK

    def text(self, value: str) -> str:
        if not value or not self.might_hold_secret(value):
            return value
        return self._pattern.sub(self._replace, value)

    def value(self, value: Any, *, check: bool = False) -> Any:
        """Redact every string inside a JSON-like value (returns a new value, or the same if clean).

        With ``check``, a mapping or list whose JSON text holds no trigger is
        returned as it is (values are never mutated, so sharing is safe).
        """
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            if check and not self.might_hold_secret(json.dumps(value, ensure_ascii=False, default=str)):
                return value
            out: dict[Any, Any] = {}
            for key, item in value.items():
                if (isinstance(key, str) and _SECRET_KEY.match(key) and not _NOT_SECRET_KEY.match(key)
                        and item not in (None, "", True, False) and not isinstance(item, (dict, list))):
                    out[key] = MARK
                else:
                    out[key] = self.value(item, check=True)
            return out
        if isinstance(value, list):
            return [self.value(item, check=True) for item in value]
        return value
