"""PluginProcessManager: whatever a plugin process does, its supervisor sees it end and the agent lives on.

The plugins here are small shell scripts; each exits 78 (refused) so that it is not restarted
and ``run()`` returns once its one process has been seen to end.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
import semver

from formae.agent.plugin_manager import InstalledPlugin
from formae.agent.process_manager import PluginEnvironment, PluginProcessManager

pytestmark = pytest.mark.timeout(15)

ENVIRONMENT = PluginEnvironment("127.0.0.1:1", "secret-cookie", 0.5, {})


def a_plugin(tmp_path: Path, script: str) -> InstalledPlugin:
    executable = tmp_path / "fake-plugin"
    executable.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    executable.chmod(0o755)
    return InstalledPlugin("fake", semver.Version.parse("1.0.0"), executable)


async def test_a_line_longer_than_the_buffer_is_logged_in_pieces_and_stops_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = a_plugin(tmp_path, "head -c 200000 /dev/zero | tr '\\0' x; echo; echo after; exit 78")
    manager = PluginProcessManager([plugin], ENVIRONMENT)

    with caplog.at_level(logging.INFO, logger="formae.plugin.fake"):
        await asyncio.wait_for(manager.run(), 10)  # raised inside the supervisor before

    logged = [r.getMessage() for r in caplog.records if r.name == "formae.plugin.fake"]
    assert sum(m.count("x") for m in logged) == 200000
    assert logged[-1].endswith("] after")


async def test_a_child_spawned_while_stopping_is_terminated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = a_plugin(tmp_path, "trap 'exit 78' TERM; while :; do sleep 0.05; done")
    manager = PluginProcessManager([plugin], ENVIRONMENT)
    spawned, resume = asyncio.Event(), asyncio.Event()
    spawn = asyncio.create_subprocess_exec

    async def slow_spawn(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        process = await spawn(*args, **kwargs)
        spawned.set()  # the process exists, its supervisor has not heard back yet
        await resume.wait()
        return process

    monkeypatch.setattr(asyncio, "create_subprocess_exec", slow_spawn)
    running = asyncio.create_task(manager.run())
    try:
        await spawned.wait()
        await manager.stop()
        resume.set()
        await asyncio.wait_for(asyncio.shield(running), 5)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
