"""PluginWatcher: plugins installed, upgraded or uninstalled while the agent runs, without restarting it.

Every ``interval`` seconds it compares the modification times of the plugin directory tree (a few
``stat`` calls) with the last look, and only when something changed asks the PluginManager what is
installed now. For each plugin whose newest installed version differs from the one running:

- newly installed: start it;
- a different version (``formae plugin install`` of a newer one, or an uninstall that leaves an
  older one): start the new version beside the old, wait until it has registered, then *drain* the
  old one — the registry routes it nothing new — until its calls in flight are answered (or
  ``drain_timeout`` passes), and only then stop its process and forget it. If the new version does
  not register within ``ready_timeout``, it is stopped and the old one keeps serving;
- uninstalled entirely: drain it, then stop it.

Operations left InProgress on the old version are polled on the new one afterwards, like any
Status poll after a plugin restart: a plugin must be able to answer for the requests of its
previous version (or finish its operations synchronously).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from formae.agent.plugin_manager import InstalledPlugin, discover_plugins

log = logging.getLogger("formae.agent.plugins")

Snapshot = tuple[tuple[str, int], ...]


class Processes(Protocol):
    """What the watcher needs of the PluginProcessManager."""

    def running(self) -> dict[str, tuple[str, InstalledPlugin]]: ...
    def start(self, plugin: InstalledPlugin) -> str: ...
    async def retire(self, node: str) -> None: ...


class Idle(Protocol):
    """A plugin's link, as far as draining it goes."""

    @property
    def in_flight(self) -> int: ...

    async def wait_idle(self) -> None: ...


class Routing(Protocol):
    """What the watcher needs of the PluginRegistry."""

    def drain(self, node: str) -> Idle | None: ...
    def forget(self, node: str) -> None: ...
    async def wait_registered(self, node: str, timeout: float) -> bool: ...


class PluginWatcher:
    def __init__(
        self,
        plugins_dir: Path,
        processes: Processes,
        registry: Routing,
        *,
        interval: float = 1.0,
        ready_timeout: float = 60.0,
        drain_timeout: float = 300.0,
        discover: Callable[[Path], list[InstalledPlugin]] = discover_plugins,
    ) -> None:
        self._dir = plugins_dir
        self._processes = processes
        self._registry = registry
        self._interval = interval
        self._ready_timeout = ready_timeout
        self._drain_timeout = drain_timeout
        self._discover = discover
        self._converging: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Watch until cancelled; each plugin that changes converges in a task of its own."""
        seen = snapshot(self._dir)
        async with asyncio.TaskGroup() as changes:
            while True:
                await asyncio.sleep(self._interval)
                now = snapshot(self._dir)
                if now == seen:
                    continue
                seen = now
                for name in self._changed_names():
                    if name not in self._converging:
                        task = changes.create_task(self.converge(name), name=f"converge plugin {name}")
                        self._converging[name] = task
                        task.add_done_callback(lambda _, n=name: self._converging.pop(n, None))  # type: ignore[misc]

    def _changed_names(self) -> list[str]:
        wanted = {p.name: p for p in self._discover(self._dir)}
        running = self._processes.running()
        names = wanted.keys() | running.keys()
        return sorted(n for n in names if _differs(wanted.get(n), running.get(n, (None, None))[1]))

    async def converge(self, name: str) -> None:
        """Until what runs of ``name`` is its newest installed version (or nothing, once uninstalled)."""
        while True:
            wanted = next((p for p in self._discover(self._dir) if p.name == name), None)
            node, current = self._processes.running().get(name, (None, None))
            if not _differs(wanted, current):
                return
            if wanted is None:
                assert node is not None
                log.info("Plugin uninstalled name=%s; stopping node=%s", name, node)
                await self._drain_and_retire(node)
                continue
            if node is None:
                log.info("Plugin installed name=%s version=%s; starting it", name, wanted.version)
                self._processes.start(wanted)
                continue
            if not await self._replace(node, wanted):
                return

    async def _replace(self, old_node: str, new: InstalledPlugin) -> bool:
        """Start ``new``; once it has registered, retire ``old_node``. False if ``new`` never registered."""
        new_node = self._processes.start(new)
        log.info(
            "Plugin upgrade name=%s version=%s node=%s replaces node=%s",
            new.name,
            new.version,
            new_node,
            old_node,
        )
        if not await self._registry.wait_registered(new_node, self._ready_timeout):
            log.error(
                "Plugin %s %s did not register within %.0fs; stopping it, %s keeps serving",
                new.name,
                new.version,
                self._ready_timeout,
                old_node,
            )
            self._registry.forget(new_node)
            await self._processes.retire(new_node)
            return False
        await self._drain_and_retire(old_node)
        return True

    async def _drain_and_retire(self, node: str) -> None:
        link = self._registry.drain(node)
        if link is not None:
            try:
                async with asyncio.timeout(self._drain_timeout):
                    await link.wait_idle()
            except TimeoutError:
                log.warning(
                    "Plugin %s still had %d calls in flight after %.0fs; stopping it anyway",
                    node,
                    link.in_flight,
                    self._drain_timeout,
                )
        self._registry.forget(node)  # first: its stream closing is then no news, not an unhealthy plugin
        await self._processes.retire(node)


def _differs(wanted: InstalledPlugin | None, running: InstalledPlugin | None) -> bool:
    if wanted is None or running is None:
        return wanted is not running
    return (wanted.version, wanted.executable) != (running.version, running.executable)


def snapshot(plugins_dir: Path) -> Snapshot:
    """The modification times of the plugin tree down to the executables: what an install changes."""
    found: list[tuple[str, int]] = []
    for path in _tree(plugins_dir):
        with contextlib.suppress(OSError):
            found.append((str(path), os.stat(path).st_mtime_ns))
    return tuple(sorted(found))


def _tree(plugins_dir: Path) -> list[Path]:
    paths = [plugins_dir]
    with contextlib.suppress(OSError):
        for plugin in plugins_dir.iterdir():
            paths.append(plugin)
            with contextlib.suppress(OSError):
                for version in plugin.iterdir():
                    paths += [version, version / f"{plugin.name}-plugin"]
    return paths
