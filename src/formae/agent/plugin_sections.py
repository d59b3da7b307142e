"""The configuration file's ``plugins`` entries, applied: grants, rate limits, in-flight bounds, restarts.

An entry is keyed by a plugin's installed name (``fake-aws``) or by its namespace (``FakeAWS``);
the name wins when both match. A spawn knows only the plugin's name, so an entry by namespace
applies to a spawn once a plugin of that name has announced the namespace (its restarts, and the
agent's next start in practice); rate limits and in-flight bounds are the namespace's, so they
match either key at once.

``replace`` swaps the entries on a reload: each use reads the current ones, which is what makes
grants and restart policies apply at the next spawn and rate limits at once (``RateLimiter.refresh``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from formae.agent.plugin_env import GrantError, GrantFiles, PluginGrant
from formae.agent.process_manager import RestartPolicy
from formae.config import PluginSection
from formae.config.model import RestartSection


class PluginSections:
    def __init__(
        self,
        sections: Mapping[str, PluginSection],
        defaults: RestartPolicy,
        files: GrantFiles | None = None,
        announced: Callable[[], Iterable[tuple[str, str]]] = lambda: (),
    ) -> None:
        """``announced`` yields (name, namespace) of the plugins registered so far."""
        self._files = files
        self._announced = announced
        self._sections: Mapping[str, PluginSection] = {}
        self._defaults = defaults
        self.replace(sections, defaults)

    def replace(self, sections: Mapping[str, PluginSection], defaults: RestartPolicy) -> None:
        """New entries (a reload); refused, changing nothing, when a grant names a missing file."""
        for key, section in sections.items():
            _grant_of(key, section)
        self._sections = dict(sections)
        self._defaults = defaults

    def by_name(self, name: str) -> PluginSection | None:
        if name in self._sections:
            return self._sections[name]
        namespaces = {ns for announced, ns in self._announced() if announced == name}
        return next((self._sections[ns] for ns in sorted(namespaces) if ns in self._sections), None)

    def by_namespace(self, namespace: str) -> PluginSection | None:
        if namespace in self._sections:
            return self._sections[namespace]
        names = {name for name, ns in self._announced() if ns == namespace}
        return next((self._sections[n] for n in sorted(names) if n in self._sections), None)

    def rate_limit(self, namespace: str) -> float | None:
        section = self.by_namespace(namespace)
        return section.rate_limit if section else None

    def max_in_flight(self, namespace: str) -> int | None:
        section = self.by_namespace(namespace)
        return section.max_in_flight if section else None

    def get(self, name: str, /) -> PluginGrant | None:
        """The plugin's grant (``Grants``): its grant file's and its entry's together, the entry winning."""
        from_file = self._files.get(name) if self._files else None
        section = self.by_name(name)
        if section is None:
            return from_file
        configured = _grant_of(name, section)
        if from_file is None:
            return configured
        return PluginGrant(
            tuple(dict.fromkeys((*from_file.env, *configured.env))),
            {**from_file.set, **configured.set},
            {**from_file.files, **configured.files},
        )

    def restart_policy(self, name: str) -> RestartPolicy:
        section = self.by_name(name)
        return _restart(self._defaults, section.restart) if section else self._defaults


def _grant_of(key: str, section: PluginSection) -> PluginGrant:
    data = {"env": list(section.env), "set": dict(section.set), "files": dict(section.files)}
    try:
        return PluginGrant.from_json(data, f"plugins.{key}")
    except GrantError as error:
        raise GrantError(f"the configuration's {error}") from None


def _restart(defaults: RestartPolicy, section: RestartSection) -> RestartPolicy:
    return RestartPolicy(
        initial_delay=section.initial_delay or defaults.initial_delay,
        max_delay=section.max_delay or defaults.max_delay,
        stable_after=section.stable_after or defaults.stable_after,
    )
