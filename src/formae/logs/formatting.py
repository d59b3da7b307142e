"""Two renderings of one record: a text line for a person, a JSON object per line for a machine.

Both carry the bound context fields (``command_id``, ``resource``, ``namespace``, ``node``,
``plugin``, ``pid``). The text line keeps the agent's historic shape, ``TIME LEVEL LOGGER:
MESSAGE``, and appends ``key=value`` for each field bound and not already in the message.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from formae.logs.context import CONTEXT_FIELDS

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "formae", None)
    return dict(fields) if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        message = record.getMessage()
        extra = [f"{k}={fields[k]}" for k in CONTEXT_FIELDS if k in fields and f"{k}=" not in message]
        if not extra:
            return line
        head, newline, rest = line.partition("\n")  # a traceback stays below the fields
        return f"{head} {' '.join(extra)}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", …fields, "exception"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
