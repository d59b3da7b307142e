"""What a reload changes: the settings that apply at once, and those that wait for a restart.

Live are the settings an actor reads again each time it uses them: the schedules' intervals, the
log level, the retry policy (for updates that start after the reload), rate limits, and what a
plugin is given at its next spawn (its grant, its restart policy). Everything else — addresses,
TLS, the datastore, the log format and file, metrics and tracing, the cluster identity — is bound
when the agent starts; a reload that changes one says so and leaves it as it runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from formae.config.layers import BY_KEY, Resolved

_LIVE_PLUGIN_FIELDS = frozenset({"env", "set", "files", "rate_limit", "restart"})


def is_live(path: tuple[str, ...]) -> bool:
    """Whether a change at ``path`` (a dotted setting split, or a structured place) applies live."""
    key = ".".join(path)
    if key in BY_KEY:
        return BY_KEY[key].live
    if path[:2] == ("retry", "codes"):
        return True
    return path[0] == "plugins" and len(path) > 2 and path[2] in _LIVE_PLUGIN_FIELDS


@dataclass(frozen=True)
class Changes:
    applied: list[str] = field(default_factory=list)
    """Keys changed and applied now."""
    needs_restart: list[str] = field(default_factory=list)
    """Keys changed in the file (or environment) that only a restart of the agent applies."""

    def as_json(self) -> dict[str, list[str]]:
        return {"applied": self.applied, "needs_restart": self.needs_restart}


def running(started: Resolved, fresh: Resolved) -> Resolved:
    """What runs after a reload: the live settings from ``fresh``, the others as the agent started."""
    values = {key: fresh.values[key] if BY_KEY[key].live else started.values[key] for key in fresh.values}
    return Resolved(values, fresh.file)


def after_reload(before: Resolved, started: Resolved, fresh: Resolved) -> Changes:
    """Live changes since the last reload (``before``); waiting ones since the start, until restarted."""
    return Changes(diff(before, fresh).applied, diff(started, fresh).needs_restart)


def diff(old: Resolved, new: Resolved) -> Changes:
    """The keys whose value differs between ``old`` and ``new``, split by whether they apply live."""
    changed = [key for key in new.values if new[key] != old[key]]
    changed.extend(_structured_changes(old, new))
    return Changes(
        [key for key in changed if is_live(tuple(key.split(".")))],
        [key for key in changed if not is_live(tuple(key.split(".")))],
    )


def _structured_changes(old: Resolved, new: Resolved) -> Iterator[str]:
    """What the files say differently outside the scalar settings (compared as written)."""
    for top in sorted(set(old.file.data) | set(new.file.data)):
        yield from _paths_differing((top,), old.file.data.get(top), new.file.data.get(top))


def _paths_differing(prefix: tuple[str, ...], a: Any, b: Any) -> Iterator[str]:
    """Dotted paths of the structured places that differ (scalar settings are compared by key above).

    An entry added or removed (``plugins.aws``) is named by the fields it sets.
    """
    if ".".join(prefix) in BY_KEY or a == b:
        return
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        a = a if isinstance(a, Mapping) else {}
        b = b if isinstance(b, Mapping) else {}
        for key in sorted(set(a) | set(b), key=str):
            yield from _paths_differing((*prefix, str(key)), a.get(key), b.get(key))
    elif len(prefix) > 1 and not _under_a_setting(prefix):
        yield ".".join(prefix)


def _under_a_setting(prefix: tuple[str, ...]) -> bool:
    return any(".".join(prefix[:end]) in BY_KEY for end in range(1, len(prefix) + 1))
