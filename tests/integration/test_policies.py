"""Stack policies on both datastores, real processes: a TTL stack goes, a drifted stack is repaired."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from formae.testing import wait_until
from tests.integration.conftest import MakeAgent
from tests.integration.harness import AgentUnderTest, network_forma
from tests.integration.sync_helpers import console, drift, inventory

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def policy_agent(agent_home: Path, make_agent: MakeAgent, store_url: str | None) -> AgentUnderTest:
    """An agent that checks stack policies five times a second (the default is every 5 s)."""
    running = make_agent(agent_home, store_url=store_url, env={"FORMAE_POLICY_INTERVAL": "0.2"}).start()
    running.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
    return running


def _with_policy(stack: str, policy: dict[str, Any]) -> dict[str, Any]:
    forma = network_forma(stack)
    forma["stacks"][0]["policies"] = [policy]
    return forma


def test_a_ttl_stack_is_destroyed_when_it_expires_and_not_before(policy_agent: AgentUnderTest) -> None:
    kept = policy_agent.apply_and_wait(network_forma("kept"))
    command = policy_agent.apply_and_wait(_with_policy("preview", {"type": "ttl", "ttl_seconds": 3}))
    assert (kept["state"], command["state"]) == ("Success", "Success")
    with policy_agent.client() as client:
        [stack] = [s for s in client.inventory("stacks") if s["label"] == "preview"]
    assert stack["policies"] == [{"type": "ttl", "ttl_seconds": 3.0}]
    expires_at = datetime.fromisoformat(stack["expires_at"])
    assert expires_at - datetime.fromisoformat(command["created_at"]) < timedelta(seconds=3.5)

    wait_until(lambda: "preview-bucket" not in policy_agent.cloud(), 60, "the TTL destroy")

    with policy_agent.client() as client:
        [destroy] = [c for c in client.commands() if c["kind"] == "destroy"]
    started = datetime.fromisoformat(destroy["created_at"])
    assert started >= expires_at  # not before its time
    assert started - expires_at < timedelta(seconds=15)  # and on time (checks every 0.2 s)
    wait_until(lambda: not inventory(policy_agent, "stack:preview"), 30, "the inventory to forget it")
    wait_until(lambda: "preview" not in _stacks(policy_agent), 30, "the stack to leave the stacks list")
    assert "kept-bucket" in policy_agent.cloud()  # another stack is untouched
    assert len(policy_agent.cloud()) == 3


def test_an_auto_reconcile_stack_is_repaired_without_a_command_from_the_user(
    policy_agent: AgentUnderTest,
) -> None:
    forma = _with_policy("auto", {"type": "auto-reconcile", "interval_seconds": 1})
    assert policy_agent.apply_and_wait(forma)["state"] == "Success"
    vpc_before = inventory(policy_agent)["vpc"]["native_id"]

    console(policy_agent, "delete", "auto-bucket")
    console(policy_agent, "update", vpc_before, '{"Tags": {"by": "hand"}}')

    wait_until(lambda: "auto-bucket" in policy_agent.cloud(), 30, "the bucket to be recreated")
    wait_until(lambda: "Tags" not in policy_agent.cloud()[vpc_before].properties, 30, "the tag to be removed")
    wait_until(lambda: not drift(policy_agent), 30, "the drift to be repaired")
    cloud = policy_agent.cloud()
    assert len(cloud) == 3
    assert {r["native_id"] for r in inventory(policy_agent).values()} == set(cloud)
    with policy_agent.client() as client:
        kinds = [(c["kind"], c["mode"]) for c in client.commands()]
    assert ("apply", "reconcile") in kinds[:-1]  # the policy's command, after the user's own


def _stacks(agent: AgentUnderTest) -> set[str]:
    with agent.client() as client:
        return {s["label"] for s in client.inventory("stacks")}
