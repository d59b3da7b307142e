"""One agent per home (an OS lock, however it is started) and one executor per command (a lease in the store).

Before: a foreground start on a home whose agent ran was not refused and overwrote ``run/agent.json``;
and a second agent on the same store resumed a command beside the agent running it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import MakeAgent
from tests.integration.harness import AgentUnderTest, install_fake_aws, network_forma

pytestmark = pytest.mark.timeout(120)


def _start(home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FORMAE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "formae", "agent", "start", f"--home={home}", "--api-address=127.0.0.1:0",
         "--plugin-address=127.0.0.1:0", *extra],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_second_agent_on_a_home_is_refused_however_it_is_started(agent: AgentUnderTest) -> None:
    before = json.loads((agent.home / "run" / "agent.json").read_text())

    foreground = _start(agent.home)
    background = _start(agent.home, "--background")

    assert foreground.returncode == 3, foreground.stderr
    assert f"another agent (pid {agent.pid}) is running on {agent.home}" in foreground.stderr
    assert background.returncode != 0
    assert str(agent.pid) in background.stderr
    assert json.loads((agent.home / "run" / "agent.json").read_text()) == before
    assert agent.process is not None
    assert agent.process.poll() is None
    with agent.client() as client:
        assert client.health()["status"] in ("ok", "degraded")


@pytest.mark.postgres
def test_an_agent_on_the_same_store_never_executes_a_command_another_agent_holds(
    agent_home: Path, make_agent: MakeAgent, postgres_url: str, tmp_path: Path
) -> None:
    first = make_agent(agent_home, store_url=postgres_url).start()
    first.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
    forma = network_forma(vpc={"FakeDelayMs": 20000})  # still running when the second agent is up
    command_id = first.apply(forma)["command_id"]
    other_home = tmp_path / "other"
    install_fake_aws(other_home)
    second = make_agent(
        other_home, store_url=postgres_url, env={"FAKE_AWS_STATE_FILE": str(first.cloud_file)}
    ).start()

    second.wait_for_log(rf"command {command_id} is executed by another agent", timeout=15)
    command = first.wait_command(command_id, timeout=60)

    assert command["state"] == "Success", command
    assert second.log_count(rf"resuming command {command_id}") == 0
    assert second.log_count(rf"taking over command {command_id}") == 0
    assert len(first.cloud()) == 3
    with first.client() as client:
        assert sorted(r["version"] for r in client.inventory("resources")) == [1, 1, 1]


def test_a_second_agent_on_a_sqlite_store_is_refused_naming_the_first(
    agent: AgentUnderTest, tmp_path: Path
) -> None:
    other_home = tmp_path / "other"
    refused = _start(other_home, f"--store-url=sqlite://{agent.home / 'data' / 'formae.db'}")

    assert refused.returncode == 3, refused.stderr
    assert "is used by another agent" in refused.stderr
    assert f"pid {agent.pid}" in refused.stderr
    assert "PostgreSQL" in refused.stderr
    with agent.client() as client:
        assert client.health()["status"] in ("ok", "degraded")
