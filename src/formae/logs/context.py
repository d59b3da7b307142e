"""Fields bound to the running code, stamped on every log record made inside it.

A ``ContextVar`` holds them, so an asyncio task sees what its creator had bound when it was
created (asyncio copies the context), and what a task binds stays in that task. ``bound`` restores
the previous fields on exit, so a binding never outlives the work it describes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType

CONTEXT_FIELDS = ("command_id", "resource", "namespace", "node", "plugin", "pid")
"""What may be bound, in the order a text line shows them."""

_EMPTY: Mapping[str, str] = MappingProxyType({})
_fields: ContextVar[Mapping[str, str]] = ContextVar("formae_log_fields", default=_EMPTY)


@contextlib.contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Every record logged inside carries ``fields`` (None values are left out)."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"not a log context field: {', '.join(sorted(unknown))}")
    merged = {**_fields.get(), **{k: str(v) for k, v in fields.items() if v is not None}}
    token = _fields.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _fields.reset(token)


def current_fields() -> Mapping[str, str]:
    return _fields.get()


class ContextFilter(logging.Filter):
    """Puts the bound fields on each record as ``record.formae`` (kept if the caller set its own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "formae"):
            record.formae = dict(_fields.get())
        return True
