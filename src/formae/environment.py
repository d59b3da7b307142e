"""One grammar for every setting read from the environment, by the agent and by plugins alike.

Before this module the agent and the plugin SDK each had their own parsers, and they disagreed:
``FORMAE_PLUGIN_TLS=on`` meant true while ``FORMAE_PLUGIN_RECONNECT=on`` meant false, and the agent
accepted the port ``²`` (``str.isdigit``) only to crash later in ``int()``. Every setting is now
read through one of the typed readers below, so a value means the same wherever it is set, and a
value that means nothing is refused with a :class:`SettingError` naming the variable.

Why not pydantic-settings: the plugin SDK reads its environment at every spawn, and importing
pydantic-settings costs about 100 ms there (measured: ``import formae.plugin`` 135 ms, with
pydantic_settings 238 ms), against a spawn-to-registered budget of 100 ms. The readers are a few
lines each and need nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

__all__ = [
    "FALSE_WORDS",
    "TRUE_WORDS",
    "SettingError",
    "parse_address",
    "parse_flag",
    "parse_headers",
    "parse_ratio",
    "parse_url",
    "read_address",
    "read_flag",
    "read_seconds",
]

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class SettingError(ValueError):
    """A setting's value means nothing; the message names the setting and says what it takes."""

    def __init__(self, name: str, raw: str, problem: str) -> None:
        super().__init__(f"{name}={raw!r} {problem}")
        self.name = name


def parse_flag(name: str, raw: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off``, in any case; anything else is an error."""
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise SettingError(name, raw, "is neither on (1, true, yes, on) nor off (0, false, no, off)")


def read_flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "")
    return default if not raw.strip() else parse_flag(name, raw)


def read_seconds(env: Mapping[str, str], name: str, *, default: float) -> float:
    """A positive, finite number of seconds (``0.5``, ``30``)."""
    raw = env.get(name, "")
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(name, raw, "is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise SettingError(name, raw, "must be positive and finite (seconds)")
    return value


def parse_address(name: str, raw: str, *, listen: bool = False) -> str:
    """``host:port`` with an ASCII decimal port (``[::1]:80`` for IPv6).

    A port to dial runs from 1 to 65535; a port to ``listen`` on may also be 0, "any free port".
    """
    host, _, port = raw.strip().rpartition(":")
    lowest = 0 if listen else 1
    if not host or not (port.isascii() and port.isdigit()) or not lowest <= int(port) < 65536:
        raise SettingError(name, raw, f"is not host:port (port {lowest} to 65535)")
    return raw.strip()


def read_address(env: Mapping[str, str], name: str, *, default: str, listen: bool = False) -> str:
    raw = env.get(name, "")
    return default if not raw.strip() else parse_address(name, raw, listen=listen)


def parse_ratio(name: str, raw: str) -> float:
    """A share from 0 to 1 (``0.25``)."""
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(name, raw, "is not a number from 0 to 1") from None
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise SettingError(name, raw, "must be from 0 to 1")
    return value


def parse_url(name: str, raw: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (``http://127.0.0.1:4318``)."""
    text = raw.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not one
    except ValueError:
        raise SettingError(name, raw, "is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError(name, raw, "is not an http:// or https:// URL with a host")
    return text.rstrip("/")


def parse_headers(name: str, raw: str) -> dict[str, str]:
    """OpenTelemetry's header list: ``key=value,key2=value2``, values percent-encoded."""
    headers: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            # the value may be a credential: never echo it
            raise SettingError(name, "…", "is not a list of key=value pairs separated by commas")
        headers[key.strip()] = unquote(value.strip())
    return headers
