"""Storms: a 2,000-resource apply and destroy through 10 agent SIGKILLs, and one through 10 plugin SIGKILLs.

Every resource answers Throttling once (create and delete alike), so each also retries. Before the
attempt fix, restarts spent attempts and such a storm failed most updates "after 8 attempts". What
is counted is the fake cloud itself against the inventory: 0 duplicated, 0 lost, 0 orphaned.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from formae.testing import pid_alive, wait_until
from tests.integration.conftest import MakeAgent
from tests.integration.harness import AgentUnderTest

pytestmark = pytest.mark.timeout(600)

RESOURCES = 2000
KILLS = 10


def _forma() -> dict[str, Any]:
    return {
        "stacks": [{"label": "storm"}],
        "targets": [{"label": "local", "namespace": "FakeAWS", "config": {}}],
        "resources": [
            {
                "label": f"b{i}",
                "type": "FakeAWS::S3::Bucket",
                "stack": "storm",
                "target": "local",
                "properties": {"BucketName": f"storm-{i}", "FakeFailWith": "Throttling", "FakeFailTimes": 1},
            }
            for i in range(RESOURCES)
        ],
    }


FINAL = ("Success", "Failed", "Canceled")
"""A command in any other state still runs (Pending until its runner starts it, InProgress after)."""


def _done(agent: AgentUnderTest, command_id: str) -> tuple[int, bool]:
    """How many of the command's updates have ended, and whether the command has."""
    with agent.client() as client:
        command = client.command(command_id, updates=False)
    finished = sum(n for state, n in command["summary"].items() if state in FINAL)
    return finished, command["state"] in FINAL


PACE = {"FAKE_AWS_RATE_LIMIT": "400"}
"""fake-aws's announced rate: the 4,000 calls of an apply (each create throttled once) last ~10 s, so
every kill lands while the command runs, however fast the agent has become."""


def _start(make_agent: MakeAgent, home: Path, store_url: str | None) -> AgentUnderTest:
    agent = make_agent(home, store_url=store_url, env=dict(PACE)).start(timeout=60)
    agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=30)
    return agent


STEP = 100
"""Updates that must finish between two kills: every kill lands while the command still runs."""


def _progressed(agent: AgentUnderTest, command_id: str, since: int, step: int = STEP) -> bool:
    finished, ended = _done(agent, command_id)
    return finished >= since + step or ended


def _restarted(agent: AgentUnderTest, spawned: int) -> bool:
    return len(agent.plugin_pids()) > spawned


def _kill_agent_while_it_runs(
    agent: AgentUnderTest, make_agent: MakeAgent, command_id: str, kills: int
) -> tuple[AgentUnderTest, int]:
    """SIGKILL the agent up to ``kills`` times while the command runs, restarting it each time."""
    done = 0
    while done < kills:
        finished, ended = _done(agent, command_id)
        if ended:
            break
        wait_until(partial(_progressed, agent, command_id, finished), 120, f"progress before kill {done}")
        agent.signal(signal.SIGKILL)
        assert agent.process is not None
        agent.process.wait(10)
        done += 1
        agent = _start(make_agent, agent.home, agent.store_url)
    return agent, done


def _count(agent: AgentUnderTest) -> tuple[Counter[str], set[str], set[str]]:
    cloud = agent.cloud().values()
    names = Counter(str(r.properties["BucketName"]) for r in cloud)
    with agent.client() as client:
        managed = {r["native_id"] for r in client.inventory("resources")}
    return names, {r.native_id for r in cloud}, managed


def test_ten_agent_kills_through_a_2000_resource_apply_and_destroy(
    agent_home: Path, make_agent: MakeAgent, store_url: str | None
) -> None:
    agent = _start(make_agent, agent_home, store_url)
    apply_id = agent.apply(_forma())["command_id"]
    agent, apply_kills = _kill_agent_while_it_runs(agent, make_agent, apply_id, KILLS // 2)
    applied = agent.wait_command(apply_id, timeout=300)

    assert applied["state"] == "Success", applied["message"]
    names, in_cloud, managed = _count(agent)
    assert len(names) == RESOURCES  # 0 lost
    assert max(names.values()) == 1  # 0 duplicated
    assert in_cloud == managed  # 0 orphaned
    assert max(u["attempts"] for u in applied["updates"]) <= 3  # restarts spent none

    with agent.client() as client:
        destroy_id = client.destroy(None, "stack:storm", False, "storm")["command_id"]
    agent, destroy_kills = _kill_agent_while_it_runs(agent, make_agent, destroy_id, KILLS - apply_kills)
    destroyed = agent.wait_command(destroy_id, timeout=300)

    assert destroyed["state"] == "Success", destroyed["message"]
    assert agent.cloud() == {}
    with agent.client() as client:
        assert client.inventory("resources") == []
    assert apply_kills + destroy_kills == KILLS
    assert agent.log_count(r"resuming command ") == KILLS


def test_ten_plugin_kills_through_a_2000_resource_apply(agent_home: Path, make_agent: MakeAgent) -> None:
    """The store plays no part in this fault: SQLite alone keeps the suite within its budget."""
    agent = _start(make_agent, agent_home, None)
    apply_id = agent.apply(_forma())["command_id"]
    killed = 0
    for kill in range(KILLS):
        finished, ended = _done(agent, apply_id)
        if ended:
            break
        wait_until(
            partial(_progressed, agent, apply_id, finished, STEP // 10), 120, f"progress before {kill}"
        )
        pids = agent.plugin_pids()
        if pid_alive(pids[-1]):
            os.kill(pids[-1], signal.SIGKILL)
            killed += 1
            wait_until(partial(_restarted, agent, len(pids)), 60, "the plugin to be restarted")
    applied = agent.wait_command(apply_id, timeout=300)

    assert killed == KILLS, f"only {killed} plugin kills landed while the apply ran"
    assert applied["state"] == "Success", applied["message"]
    names, in_cloud, managed = _count(agent)
    assert len(names) == RESOURCES
    assert max(names.values()) == 1
    assert in_cloud == managed
