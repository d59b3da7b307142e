"""The agent never gives up on a plugin, shows why it is down, and refuses work it cannot do (issue 9).

The restart backoff is capped at 50 ms here (``FORMAE_PLUGIN_RESTART_MAX_DELAY``) so that the 20
quick crashes after which the agent used to give up take a second or two, not half an hour.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from formae.cli.client import Rejected
from formae.testing import wait_until
from tests.integration.conftest import MakeAgent
from tests.integration.harness import AgentUnderTest, network_forma

pytestmark = pytest.mark.timeout(120)

PLUGINS = Path(__file__).parent / "plugins"


def _install(home: Path, name: str, body: str) -> None:
    executable = home / "plugins" / name / "v0.1.0" / f"{name}-plugin"
    executable.parent.mkdir(parents=True)
    executable.write_text(f"#!/bin/sh\n{body}\n")
    executable.chmod(0o755)


def _by_name(agent: AgentUnderTest, name: str) -> dict[str, Any]:
    return next(p for p in agent.plugins() if p["name"] == name)


def _flaky_forma() -> dict[str, Any]:
    return {
        "stacks": [{"label": "s"}],
        "targets": [{"label": "f", "namespace": "Flaky", "config": {}}],
        "resources": [
            {"label": "w", "type": "Flaky::Thing::Widget", "stack": "s", "target": "f", "properties": {}}
        ],
    }


@pytest.fixture
def crashing_agent(agent_home: Path, make_agent: MakeAgent) -> AgentUnderTest:
    _install(agent_home, "crashy", "echo 'crashy: missing credential AWS_KEY' >&2; exit 3")
    marker = agent_home / "flaky.marker"
    _install(
        agent_home,
        "flaky",
        f"cd {PLUGINS} && FLAKY_MARKER={marker} exec {sys.executable} {PLUGINS / 'flaky_plugin.py'}",
    )
    agent = make_agent(agent_home, env={"FORMAE_PLUGIN_RESTART_MAX_DELAY": "0.05"}).start()
    agent.wait_for_log(r"Plugin registered namespace=FakeAWS", timeout=20)
    agent.wait_for_log(r"Plugin registered namespace=Flaky", timeout=20)
    return agent


def test_a_crash_looping_plugin_is_restarted_forever_and_shown_with_why(
    crashing_agent: AgentUnderTest,
) -> None:
    agent = crashing_agent
    crashy = wait_until(
        lambda: (p := _by_name(agent, "crashy"))["process"]["restarts"] > 25 and p,
        60,
        "more restarts of crashy than the 20 after which the agent used to give up",
    )
    process = crashy["process"]
    assert process["crash_looping"]
    assert process["last_exit_code"] == 3
    assert process["state"] in ("backing-off", "starting", "running")
    assert "crashy: missing credential AWS_KEY" in process["stderr_tail"]
    assert crashy["namespace"] == ""
    assert not crashy["healthy"]
    assert crashy["registered_at"] is None
    assert agent.log_count(r"giving up") == 0

    with agent.client() as client:
        health = client.health()
    assert health["status"] == "degraded"
    assert any(r.startswith("plugin crashy is crash-looping") for r in health["reasons"]), health

    listed = subprocess.run(
        [sys.executable, "-m", "formae", "plugin", "list", "--api-url", agent.runtime["api_url"]],
        capture_output=True,
        text=True,
        timeout=30,
        env={"COLUMNS": "200", "PATH": str(Path(sys.executable).parent), "FORMAE_HOME": str(agent.home)},
    )
    assert listed.returncode == 0, listed.stderr
    assert "crash-looping" in listed.stdout
    assert "stderr| crashy: missing credential AWS_KEY" in listed.stdout
    assert "last exit code 3, next try" in listed.stdout

    assert agent.apply_and_wait(network_forma())["state"] == "Success"  # FakeAWS is unaffected
    assert len(agent.cloud()) == 3


def test_a_command_for_a_crash_looping_namespace_is_refused_at_once_saying_why(
    crashing_agent: AgentUnderTest,
) -> None:
    agent = crashing_agent
    wait_until(
        lambda: (_by_name(agent, "flaky").get("process") or {}).get("crash_looping"),
        60,
        "flaky to crash-loop after registering",
    )

    submitted = time.monotonic()
    with pytest.raises(Rejected) as rejected:
        agent.apply(_flaky_forma())

    assert time.monotonic() - submitted < 3.0
    assert rejected.value.status == 503
    [problem] = rejected.value.problems
    assert problem.startswith("no healthy plugin for namespace Flaky: plugin flaky is crash-looping")
    assert "last exit code 3" in problem
    flaky = _by_name(agent, "flaky")
    assert flaky["namespace"] == "Flaky"
    assert not flaky["healthy"]
    assert "flaky: cannot reach the cloud: credentials revoked" in flaky["process"]["stderr_tail"]
    with agent.client() as client:
        assert any("plugin flaky is crash-looping" in r for r in client.health()["reasons"])
