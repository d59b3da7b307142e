"""Node names cannot be hijacked: a name stays with the identity that first registered it (issue 9)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from formae.testing import pid_alive, wait_until
from tests.integration.conftest import MakeAgent
from tests.integration.harness import (
    FAKE_AWS,
    AgentUnderTest,
    join_token,
    network_forma,
    start_plugin_by_hand,
)

pytestmark = pytest.mark.timeout(90)

ALPHA = [sys.executable, str(Path(__file__).parent / "plugins" / "alpha_plugin.py")]


def test_a_joined_plugin_announcing_a_spawned_plugins_node_is_refused_and_evicts_nothing(
    agent: AgentUnderTest,
) -> None:
    [spawned] = agent.plugins()
    node = spawned["node"]  # fake-aws@<this host>

    hijacker = start_plugin_by_hand(agent, node, token=join_token(agent, "Alpha"), argv=ALPHA)

    assert hijacker.wait(30) == 78  # refused: the SDK's exit code, so nobody restarts it
    agent.wait_for_log(rf"Plugin refused node={node} .*belongs to a plugin this agent spawns")
    [still] = agent.plugins()
    assert (still["node"], still["pid"], still["namespace"], still["healthy"]) == (
        node,
        spawned["pid"],
        "FakeAWS",
        True,
    )
    assert agent.log_count(r"Plugin unhealthy") == 0
    assert agent.log_count(r"Plugin registered namespace=Alpha") == 0
    assert agent.apply_and_wait(network_forma())["state"] == "Success"
    assert len(agent.cloud()) == 3


def test_a_remote_node_name_stays_with_its_certificate_and_its_own_restart_replaces_it(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    agent = make_agent(tmp_path / "bare-home").start()
    token = join_token(agent, "Alpha")
    first = start_plugin_by_hand(agent, "alpha@box", token=token, argv=ALPHA)
    agent.wait_for_log(r"Plugin registered namespace=Alpha node=alpha@box .*location=remote")
    [holder] = agent.plugins()

    other_state = {"FORMAE_PLUGIN_STATE_DIR": str(tmp_path / "another-host")}  # its own key and grant
    impostor = start_plugin_by_hand(
        agent, "alpha@box", token=join_token(agent, "Alpha"), argv=ALPHA, extra_env=other_state
    )

    assert impostor.wait(30) == 78
    agent.wait_for_log(r"Plugin refused node=alpha@box .*bound to the plugin that registered it first")
    assert [(p["pid"], p["healthy"]) for p in agent.plugins()] == [(holder["pid"], True)]

    first.kill()  # the same plugin again, with the grant it kept: its stale entry is replaced
    first.wait(10)
    again = start_plugin_by_hand(agent, "alpha@box", token=token, argv=ALPHA)  # spent, but its grant is kept
    agent.wait_for_log(r"Plugin registered namespace=Alpha node=alpha@box", count=2, timeout=20)
    wait_until(lambda: agent.plugins()[0]["pid"] == again.pid, 10, "the restarted plugin's entry")
    assert agent.plugins()[0]["healthy"]


def test_a_wrapper_script_without_exec_is_explained_kept_local_and_stopped_with_the_agent(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    home = tmp_path / "wrapped-home"
    wrapper = home / "plugins" / "wrapped" / "v1.0.0" / "wrapped-plugin"
    wrapper.parent.mkdir(parents=True)
    wrapper.write_text(f"#!/bin/sh\n{FAKE_AWS}\n")  # no `exec`: the plugin is the wrapper's child
    wrapper.chmod(0o755)
    agent = make_agent(home).start()

    agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=wrapped@\S+ .*location=local", timeout=20)
    [registered] = agent.plugins()
    [spawned] = agent.plugin_pids()
    assert registered["pid"] != spawned
    explanation = agent.wait_for_log(r"Plugin wrapped@\S+ announced pid \d+, but the agent spawned pid \d+.*")
    assert f"announced pid {registered['pid']}, but the agent spawned pid {spawned}" in explanation
    assert "without `exec`" in explanation

    assert agent.stop() == 0
    wait_until(lambda: not pid_alive(registered["pid"]), 5, "the wrapped plugin to stop with the agent")
