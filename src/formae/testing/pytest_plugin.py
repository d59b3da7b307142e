"""pytest fixtures for plugin authors: the plugin under the harness, and a real agent running it.

In your ``conftest.py``::

    pytest_plugins = ["formae.testing.pytest_plugin"]

    @pytest.fixture
    def formae_plugin() -> MyCloudPlugin:          # the plugin object, for `plugin_harness`
        return MyCloudPlugin()

    @pytest.fixture
    def formae_plugin_command() -> list[str]:      # how to start it, for `formae_agent`
        return [sys.executable, "-m", "my_cloud"]

Then ``plugin_harness`` is a ``PluginHarness`` around ``formae_plugin`` (``async with plugin_harness as
cloud: ...``: every request and answer crosses the real wire codec), and ``formae_agent`` is an
``AgentProcess`` in a temporary home with the plugin installed (behind a wrapper that ``exec``\\s the
command) and registered. ``formae_agent.apply_converged(forma)`` applies a forma through the plugin
and fails unless planning the same forma again is empty.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from formae.plugin.base import ResourcePlugin
from formae.plugin.testing import PluginHarness
from formae.testing.agent import AgentProcess

REGISTER_WITHIN = 30.0


@pytest.fixture
def plugin_harness(formae_plugin: ResourcePlugin) -> PluginHarness:
    """The plugin called as the agent calls it, without an agent; enter it with ``async with``."""
    return PluginHarness(formae_plugin)


@pytest.fixture
def formae_agent(tmp_path: Path, formae_plugin_command: list[str]) -> Iterator[AgentProcess]:
    """A real agent with the plugin installed and registered; stopped, with its plugin, after the test."""
    home = tmp_path / "formae-home"
    description = install_command(home, formae_plugin_command)
    agent = AgentProcess(home).start()
    try:
        namespace = re.escape(str(description["namespace"]))
        agent.wait_for_log(rf"Plugin registered namespace={namespace} ", timeout=REGISTER_WITHIN)
        yield agent
    finally:
        agent.cleanup()


def install_command(home: Path, command: list[str]) -> dict[str, object]:
    """Install ``command`` as a plugin of the agent in ``home``: a wrapper that ``exec``\\s it, where
    ``--describe`` says (``plugins/{name}/v{version}/{name}-plugin``). Returns the description."""
    done = subprocess.run([*command, "--describe"], capture_output=True, text=True, timeout=30, check=True)
    description: dict[str, object] = json.loads(done.stdout)
    name, version = description["name"], description["version"]
    executable = home / "plugins" / f"{name}" / f"v{version}" / f"{name}-plugin"
    executable.parent.mkdir(parents=True, exist_ok=True)
    executable.write_text(f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n', encoding="utf-8")
    executable.chmod(0o755)
    return description
