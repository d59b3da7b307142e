"""The shapes of a secret value, and walking a JSON document to find, replace or mask them.

::

    {"$value": "hunter2", "$visibility": "Opaque"}        clear: in a forma, and to the plugin only
    {"$secret": {"env": "DB_PASSWORD"}}                   a reference the agent resolves
    {"$secret": {"file": "/run/secrets/db"}}
    {"$visibility": "Opaque", "$sealed": "k1:…", "$hash": "…"}    what the agent keeps

Any of them may carry ``"$strategy": "SetOnce"``: the value is sent when the resource is created
and a later change to it plans nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MASK = "(secret)"
OPAQUE = "Opaque"
SET_ONCE = "SetOnce"

Replace = Callable[[dict[str, Any]], Any]
"""Given a secret's dict, what to put in its place."""


def is_clear(value: Any) -> bool:
    return isinstance(value, dict) and "$value" in value and value.get("$visibility") == OPAQUE


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("$secret"), dict)


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("$sealed"), str)


def is_secret(value: Any) -> bool:
    return is_clear(value) or is_reference(value) or is_sealed(value)


def is_set_once(value: dict[str, Any]) -> bool:
    return value.get("$strategy") == SET_ONCE


def replace_secrets(value: Any, replace: Replace) -> Any:
    """A copy of ``value`` with every secret replaced by ``replace(secret)``; the rest shared."""
    if isinstance(value, dict):
        if is_secret(value):
            return replace(value)
        return {k: replace_secrets(v, replace) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_secrets(v, replace) for v in value]
    return value


def contains_secrets(value: Any) -> bool:
    """Whether ``value`` holds a secret anywhere: a walk that copies nothing and stops at the first.

    Asked of every request and result the agent exchanges with a plugin, most of which hold none.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if is_secret(item):
                return True
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def mask(value: Any) -> Any:
    """``value`` for people and logs: every secret, in whatever shape, becomes ``(secret)``."""
    return replace_secrets(value, lambda _: MASK)
