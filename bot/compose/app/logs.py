"""Process-wide logging: plain text for a terminal, or one JSON object a line for a log collector.

Configured once by the CLI before settings are read (from ``--log-level`` /
``--log-format`` or the environment) and again once the settings are known,
so a level or format in the YAML file applies too.  Records carry no secrets:
settings hold them as ``SecretStr`` and database URLs are logged redacted.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
# fields every LogRecord has; anything else came from ``extra=`` and goes into the JSON object
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...extra, "exception"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "WARNING", fmt: str = "text") -> None:
    """(Re)configure the root logger; raises ``ValueError`` naming what was expected."""
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"expected one of {', '.join(LEVELS)}, not {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"expected one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Python's own warnings (a library's RuntimeWarning, say) go through the same handler, so a
    # JSON log stays one object a line
    logging.captureWarnings(True)
