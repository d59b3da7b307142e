"""PluginWatcher without processes: what it starts, drains, retires and forgets, and in which order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import semver

from formae.agent.plugin_manager import InstalledPlugin
from formae.agent.plugin_watch import PluginWatcher, snapshot

pytestmark = pytest.mark.timeout(10)


def plugin(version: str) -> InstalledPlugin:
    return InstalledPlugin(
        "tiny", semver.Version.parse(version), Path(f"/plugins/tiny/v{version}/tiny-plugin")
    )


class Link:
    def __init__(self, in_flight: int) -> None:
        self.in_flight = in_flight
        self.idle = asyncio.Event()
        if in_flight == 0:
            self.idle.set()

    async def wait_idle(self) -> None:
        await self.idle.wait()


class World:
    """The process manager and the registry as the watcher sees them, with what happened, in order."""

    def __init__(self, running: dict[str, tuple[str, InstalledPlugin]], registers: bool = True) -> None:
        self.running_now = dict(running)
        self.registers = registers
        self.events: list[str] = []
        self.links: dict[str, Link] = {}
        self.drained = asyncio.Event()

    def running(self) -> dict[str, tuple[str, InstalledPlugin]]:
        return dict(self.running_now)

    def start(self, installed: InstalledPlugin) -> str:
        node = f"tiny-v{installed.version}@host"
        self.running_now[installed.name] = (node, installed)
        self.events.append(f"start {node}")
        return node

    async def retire(self, node: str) -> None:
        self.events.append(f"retire {node}")
        for name, (running_node, _) in list(self.running_now.items()):
            if running_node == node:
                del self.running_now[name]

    def drain(self, node: str) -> Link | None:
        self.events.append(f"drain {node}")
        self.drained.set()
        return self.links.get(node)

    def forget(self, node: str) -> None:
        self.events.append(f"forget {node}")

    async def wait_registered(self, node: str, timeout: float) -> bool:
        self.events.append(f"registered? {node}")
        return self.registers


def watcher(world: World, installed: list[InstalledPlugin]) -> PluginWatcher:
    return PluginWatcher(Path("/plugins"), world, world, discover=lambda _: installed, drain_timeout=5)


async def test_a_new_plugin_is_started() -> None:
    world = World({})
    await watcher(world, [plugin("1.0.0")]).converge("tiny")
    assert world.events == ["start tiny-v1.0.0@host"]


async def test_a_newer_version_is_started_then_the_old_one_drained_then_stopped() -> None:
    world = World({"tiny": ("tiny@host", plugin("1.0.0"))})
    world.links["tiny@host"] = Link(in_flight=1)
    converging = asyncio.create_task(watcher(world, [plugin("1.1.0")]).converge("tiny"))
    await world.drained.wait()

    assert world.events == ["start tiny-v1.1.0@host", "registered? tiny-v1.1.0@host", "drain tiny@host"]
    for _ in range(5):
        await asyncio.sleep(0)
    assert "retire tiny@host" not in world.events, "the old version is stopped only once its call is answered"

    world.links["tiny@host"].idle.set()
    await converging
    assert world.events[3:] == ["forget tiny@host", "retire tiny@host"]


async def test_a_new_version_that_never_registers_is_stopped_and_the_old_one_kept() -> None:
    world = World({"tiny": ("tiny@host", plugin("1.0.0"))}, registers=False)
    await watcher(world, [plugin("1.1.0")]).converge("tiny")
    assert world.events == [
        "start tiny-v1.1.0@host",
        "registered? tiny-v1.1.0@host",
        "forget tiny-v1.1.0@host",
        "retire tiny-v1.1.0@host",
    ]


async def test_an_uninstalled_plugin_is_drained_and_stopped() -> None:
    world = World({"tiny": ("tiny@host", plugin("1.0.0"))})
    await watcher(world, []).converge("tiny")
    assert world.events == ["drain tiny@host", "forget tiny@host", "retire tiny@host"]


async def test_the_running_version_is_left_alone() -> None:
    world = World({"tiny": ("tiny@host", plugin("1.0.0"))})
    await watcher(world, [plugin("1.0.0")]).converge("tiny")
    assert world.events == []


def test_the_snapshot_changes_when_an_executable_appears(tmp_path: Path) -> None:
    version = tmp_path / "tiny" / "v1.0.0"
    version.mkdir(parents=True)
    before = snapshot(tmp_path)
    (version / "tiny-plugin").write_text("#!/bin/sh\n")
    assert snapshot(tmp_path) != before
