"""PluginManager: finds the plugin executables installed under the agent's home.

Layout: ``{home}/plugins/{name}/v{semver}/{name}-plugin``. The highest version of each plugin
wins. Anything else found there is skipped with a warning: a half-copied install must not stop
the agent from serving every other plugin.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import semver

log = logging.getLogger("formae.agent.plugins")


@dataclass(frozen=True, slots=True)
class InstalledPlugin:
    name: str
    version: semver.Version
    executable: Path


def discover_plugins(plugins_dir: Path) -> list[InstalledPlugin]:
    """The newest runnable version of each plugin under ``plugins_dir``, sorted by name."""
    if not plugins_dir.is_dir():
        return []
    found = (_newest(entry) for entry in sorted(plugins_dir.iterdir()) if _is_plugin_dir(entry))
    return [plugin for plugin in found if plugin is not None]


def _is_plugin_dir(entry: Path) -> bool:
    if entry.is_dir():
        return True
    log.warning("skipping %s: not a plugin directory", entry)
    return False


def _newest(plugin_dir: Path) -> InstalledPlugin | None:
    try:
        entries = list(plugin_dir.iterdir())
    except OSError as error:
        log.warning("skipping plugin %s: cannot read %s: %s", plugin_dir.name, plugin_dir, error)
        return None
    candidates = [plugin for entry in entries if (plugin := _installed(plugin_dir.name, entry))]
    if not candidates:
        log.warning("skipping plugin %s: no runnable version under %s", plugin_dir.name, plugin_dir)
        return None
    return max(candidates, key=lambda plugin: plugin.version)


def _installed(name: str, version_dir: Path) -> InstalledPlugin | None:
    version = _parse_version(version_dir)
    if version is None:
        return None
    executable = version_dir / f"{name}-plugin"
    if not executable.is_file():
        log.warning("skipping %s: %s is missing", version_dir, executable.name)
        return None
    if not os.access(executable, os.X_OK):
        log.warning("skipping %s: %s is not executable", version_dir, executable)
        return None
    return InstalledPlugin(name, version, executable)


def _parse_version(version_dir: Path) -> semver.Version | None:
    if not version_dir.is_dir() or not version_dir.name.startswith("v"):
        log.warning("skipping %s: expected a directory named v<semver>", version_dir)
        return None
    try:
        return semver.Version.parse(version_dir.name[1:])
    except ValueError:
        log.warning("skipping %s: %r is not a semantic version", version_dir, version_dir.name[1:])
        return None
