"""The effective configuration for a person: every value, where it came from, secrets masked.

Masked are the datastore URL's password, every fixed value a plugin is given (``plugins.*.set``:
they are what credentials are made of) and the tracing exporter's headers (their names are shown).
A masked value shows as ``(secret)``, the word the rest of formae uses, so a copy of the output
pasted in a ticket leaks nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from formae.config.changes import is_live
from formae.config.layers import BY_KEY, Resolved
from formae.config.reading import ConfigFile

SECRET = "(secret)"
_SECRET_MAPS = (("plugins", "*", "set"),)
"""Structured places whose every value is masked (``*`` is any key)."""


@dataclass(frozen=True)
class Row:
    key: str
    value: Any
    origin: str
    live: bool

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "origin": self.origin, "live": self.live}


def mask_url(url: str) -> str:
    """``postgresql://formae:(secret)@db/formae``: the password of a URL masked, the rest kept."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:{SECRET}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def effective_rows(settings: Resolved) -> list[Row]:
    """One row per scalar setting, then one per value the file's structured sections set."""
    rows = [
        Row(key, _masked(key, value.value), value.origin, BY_KEY[key].live)
        for key, value in settings.values.items()
    ]
    rows.extend(_structured(settings.file))
    return rows


def _masked(key: str, value: Any) -> Any:
    if not BY_KEY[key].secret:
        return value
    if isinstance(value, Mapping):
        return {name: SECRET for name in value}
    return mask_url(value) if isinstance(value, str) else SECRET


def _structured(file: ConfigFile) -> Iterator[Row]:
    for top in ("retry", "plugins"):
        section = file.data.get(top)
        if not isinstance(section, Mapping):
            continue
        for path, value in _leaves((top,), section):
            if path[:2] == ("retry", "codes") or top == "plugins":
                shown = SECRET if _is_secret(path) else value
                yield Row(".".join(map(str, path)), shown, f"file {file.where(path)}", is_live(path))


def _leaves(prefix: tuple[str, ...], value: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _leaves((*prefix, str(key)), item)
    else:
        yield prefix, value


def _is_secret(path: tuple[str, ...]) -> bool:
    return any(
        len(path) > len(pattern) and all(p in ("*", part) for p, part in zip(pattern, path, strict=False))
        for pattern in _SECRET_MAPS
    )
