"""Known clear values, scrubbed out of free text: log lines, plugin messages, errors.

The agent learns each secret's clear value when it seals or reveals it, and from then on replaces
it with ``(secret)`` wherever it shows up in text — including a plugin's own log output or error
message that quotes it. Values shorter than ``MIN_LENGTH`` are not scrubbed: masking every ``1`` or
``on`` would wreck the logs and protect nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from formae.secrets.values import MASK

MIN_LENGTH = 4


class Redactor:
    def __init__(self) -> None:
        self._values: set[str] = set()

    def learn(self, value: Any) -> None:
        for text in _texts(value):
            if len(text) >= MIN_LENGTH:
                self._values.add(text)

    def redact(self, text: str) -> str:
        for value in sorted((v for v in self._values if v in text), key=len, reverse=True):
            text = text.replace(value, MASK)
        return text

    def knows_any(self, text: str) -> bool:
        return any(v in text for v in self._values)

    def __repr__(self) -> str:
        return f"Redactor({len(self._values)} values)"


class RedactingFilter(logging.Filter):
    """A logging filter that puts every record through a ``Redactor`` before any handler writes it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redactor.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = str(record.exc_info[1])
            if self._redactor.knows_any(text):
                record.msg, record.args = f"{redacted} ({type(record.exc_info[1]).__name__}: (secret))", None
                record.exc_info, record.exc_text = None, None
        return True


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return [] if value is None or isinstance(value, bool) else [str(value)]
