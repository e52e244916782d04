"""Log records on stderr, as text or one JSON object per line, with UTC timestamps and offset.

`gridcoord --log-level L --log-format text|json COMMAND` sets the defaults every command's
`configure` call then uses; a container's log collector takes stderr from there.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]

_settings: dict[str, object] = {"level": None, "format": "text"}


def set_defaults(level: str | None, fmt: LogFormat) -> None:
    """Remember the command line's choice for `configure` (called before any command runs)."""
    _settings["level"] = level.upper() if level else None
    _settings["format"] = fmt


def current_format() -> LogFormat:
    """The format the command line chose (for a child process, which starts afresh)."""
    return "json" if _settings["format"] == "json" else "text"


class _UtcText(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (RFC 3339 UTC), ``level``, ``logger``, ``message``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(default_level: int = logging.INFO) -> None:
    """Install the stderr handler: the command line's level if given, else ``default_level``."""
    level = _settings["level"] or default_level
    handler = logging.StreamHandler(sys.stderr)
    if _settings["format"] == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_UtcText("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)  # type: ignore[arg-type]
