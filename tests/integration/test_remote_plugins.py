"""Remote plugins on real separate hosts: each plugin in its own network namespace, the agent in the root one.

A plugin on another host reaches the agent over one outbound gRPC stream, so what can go wrong is
the network between them: a link that goes dark without a reset, a host that dies, an agent that
restarts while its plugins keep running. These tests make those happen for real (see ``netns.py``)
and check the promises of docs/architecture.md §3.3-3.4: a silent plugin is marked unhealthy in
about the heartbeat timeout, its calls move to a healthy replica or wait for it to come back, it
re-announces by itself, and every resource exists exactly once in the (shared) cloud.

Every test runs twice: ``netns`` (veth pairs, a cut is a link set down) and ``loopback-sigstop``
(127.0.0.1, a cut is a SIGSTOPped plugin: a frozen host). Where namespaces are not allowed the
netns variant skips and says why.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from formae.testing import wait_until
from formae.wire.frames import Heartbeat
from formae.wire.transport import AgentSideStream, PluginConnection, StreamClosed, start_hub_server
from tests.integration.conftest import MakeAgent
from tests.integration.harness import AgentUnderTest, network_forma
from tests.integration.netns import (
    HostNetwork,
    free_port,
    network_fixture,  # noqa: F401  (the test_network fixture, one parameter per kind of network)
    plugin_log,
    start_remote_plugin,
)

pytestmark = pytest.mark.timeout(120)

VPC = "FakeAWS::EC2::VPC"
HEARTBEAT_TIMEOUT = 2.5
"""The agent's default FORMAE_HEARTBEAT_TIMEOUT: a plugin silent this long is unhealthy."""
UNHEALTHY_WITHIN = HEARTBEAT_TIMEOUT + 1.5
"""Cut to "Plugin unhealthy": the timeout, up to one heartbeat interval (0.5 s) already elapsed since
the last heartbeat counted, the watchdog's 0.05 s tick, and slack for a loaded CI machine."""
Census = Counter[tuple[str, str]]

FINISHES_DURING_CUT_MS = 2000
"""A create that ends while its host is cut off: done in the cloud, its reply lost on the way."""


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def remote_agent(tmp_path: Path, make_agent: MakeAgent, test_network: HostNetwork) -> AgentUnderTest:
    """An agent with no plugin installed (only remote ones will serve it), on a fixed port.

    The port is fixed, not 0, so that an agent restarted on the same home listens where the
    remote plugins keep dialling.
    """
    port = free_port(test_network.agent_bind_host)
    agent = make_agent(tmp_path / "home", plugin_address=test_network.plugin_address(port))
    agent.start()
    return agent


def registered(node: str) -> str:
    return rf"Plugin registered namespace=FakeAWS node={re.escape(node)} .*location=remote"


def unhealthy(node: str, reason: str = "") -> str:
    return rf"Plugin unhealthy namespace=FakeAWS node={re.escape(node)} reason={reason}"


def join(
    agent: AgentUnderTest, network: HostNetwork, host_name: str, **env: str
) -> tuple[str, subprocess.Popen[bytes]]:
    """A new host running fake-aws, registered with the agent; its node name and process."""
    host = network.add_host(host_name)
    node = f"fake-aws@{host_name}"
    plugin = start_remote_plugin(agent, network, host, node, **env)
    try:
        agent.wait_for_log(registered(node), timeout=20)
    except AssertionError:
        raise AssertionError(f"{node} did not register; its log:\n{_read(plugin_log(agent, node))}") from None
    return node, plugin


def wait_reregistered(agent: AgentUnderTest, node: str, plugin: subprocess.Popen[bytes]) -> None:
    """Until ``node`` has announced a second time; fails at once, with its log, if the plugin died."""

    def done() -> bool:
        if plugin.poll() is not None:
            tail = "\n".join(_read(plugin_log(agent, node)).splitlines()[-12:])
            raise AssertionError(f"{node} exited with {plugin.returncode} instead of reconnecting:\n{tail}")
        return agent.log_count(registered(node)) >= 2

    wait_until(done, 30, f"{node} to announce again")


def plugin_view(agent: AgentUnderTest, node: str) -> dict[str, Any]:
    return next(p for p in agent.plugins() if p["node"] == node)


def wait_busy(agent: AgentUnderTest, node: str, command_id: str) -> None:
    """Until the agent has a call out to ``node``: the moment a cut or a kill hurts."""
    with agent.client() as client:

        def busy() -> bool:
            if plugin_view(agent, node)["in_flight"] > 0:
                return True
            command = client.command(command_id)
            if command["state"] in ("Success", "Failed", "Canceled"):
                raise AssertionError(f"the command ended before {node} was busy: {command}")
            return False

        wait_until(busy, 15, f"a call in flight to {node}")


def vpcs(count: int, **properties: Any) -> dict[str, Any]:
    """``count`` independent VPCs, each with its label as ``Name`` so the cloud can be counted by label."""
    return {
        "stacks": [{"label": "remote"}],
        "targets": [{"label": "local", "namespace": "FakeAWS", "config": {"region": "us-east-1"}}],
        "resources": [
            {
                "label": f"vpc-{i}",
                "type": VPC,
                "stack": "remote",
                "target": "local",
                "properties": {"CidrBlock": "10.0.0.0/16", "Name": f"vpc-{i}", **properties},
            }
            for i in range(count)
        ],
    }


def slow_network_forma(delay_ms: int) -> dict[str, Any]:
    """The seed's forma with operations that stay in flight: slow creates, a subnet answering InProgress."""
    return network_forma(
        vpc={"Name": "vpc", "FakeDelayMs": delay_ms},
        subnet={"Name": "subnet", "FakeInProgressPolls": 3},
        bucket={"FakeDelayMs": delay_ms},
    )


def census(agent: AgentUnderTest) -> Census:
    """What the cloud holds, by type and label (``Name``, or a bucket's name)."""
    return Counter(
        (r.type, str(r.properties.get("Name") or r.properties.get("BucketName") or ""))
        for r in agent.cloud().values()
    )


def expected(forma: dict[str, Any]) -> Census:
    return Counter(
        (r["type"], str(r["properties"].get("Name") or r["properties"].get("BucketName") or ""))
        for r in forma["resources"]
    )


def wait_command(
    agent: AgentUnderTest, command_id: str, timeout: float, tick: Callable[[], None] | None = None
) -> dict[str, Any]:
    """The command once final; ``tick`` runs between polls (to sample the agent meanwhile)."""
    with agent.client() as client:

        def final() -> dict[str, Any] | None:
            if tick is not None:
                tick()
            command = client.command(command_id)
            return command if command["state"] in ("Success", "Failed", "Canceled") else None

        return dict(wait_until(final, timeout, f"command {command_id}", interval=0.05))


def stop(plugin: subprocess.Popen[bytes]) -> int:
    plugin.terminate()
    return plugin.wait(10)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else "(no log)"


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


# ---------------------------------------------------------------- scenarios


def test_remote_plugin_registers_and_serves_an_apply(
    remote_agent: AgentUnderTest, test_network: HostNetwork
) -> None:
    """A plugin on its own host dials out to the agent and is routed to like a local one."""
    agent = remote_agent
    node, plugin = join(agent, test_network, "p1")

    [view] = agent.plugins()
    assert (view["node"], view["location"], view["pid"]) == (node, "remote", plugin.pid)
    assert view["healthy"]

    forma = network_forma(vpc={"Name": "vpc"}, subnet={"Name": "subnet"})
    command = agent.apply_and_wait(forma)

    assert command["state"] == "Success", command
    assert census(agent) == expected(forma)
    assert stop(plugin) == 0


def test_cut_link_without_replica_heals_after_restore(
    remote_agent: AgentUnderTest, test_network: HostNetwork
) -> None:
    """The only plugin's host goes dark mid-apply: unhealthy within ~3 s, then back by itself.

    On netns the creates the plugin finished while cut never reached the agent; they are sent
    again with the same idempotency key after the plugin re-announces, and answered with what was
    made, so nothing is created twice. A frozen host (loopback) finishes nothing while frozen.
    """
    agent = remote_agent
    node, plugin = join(agent, test_network, "p1")
    [host] = test_network.hosts
    forma = slow_network_forma(FINISHES_DURING_CUT_MS)
    command_id = agent.apply(forma)["command_id"]
    wait_busy(agent, node, command_id)

    test_network.cut(host)
    cut_at = time.monotonic()
    agent.wait_for_log(unhealthy(node, "no heartbeat"), timeout=UNHEALTHY_WITHIN + 2)
    noticed_after = time.monotonic() - cut_at
    assert noticed_after < UNHEALTHY_WITHIN, f"unhealthy only {noticed_after:.1f}s after the cut"
    with agent.client() as client:
        assert client.command(command_id)["state"] == "InProgress"  # waiting, not failed

    test_network.restore(host)
    wait_reregistered(agent, node, plugin)  # the same process, re-announced by itself
    command = wait_command(agent, command_id, timeout=60)

    assert command["state"] == "Success", command
    assert census(agent) == expected(forma)
    assert plugin_view(agent, node)["pid"] == plugin.pid
    assert plugin.poll() is None
    assert stop(plugin) == 0


def test_cut_link_with_replica_completes_on_the_replica(
    remote_agent: AgentUnderTest, test_network: HostNetwork
) -> None:
    """One of two replicas goes dark mid-apply: its calls fail over, the apply ends while it is still cut.

    On netns the cut replica finishes its creates in the shared cloud while cut; the retries
    on the other replica carry the same idempotency keys and must be answered with those, not
    with copies. After the cut host comes back the cloud still holds each resource exactly once.
    """
    agent = remote_agent
    cut_node, cut_plugin = join(agent, test_network, "p1", FAKE_AWS_DELAY_MS=str(FINISHES_DURING_CUT_MS))
    replica, _ = join(agent, test_network, "p2", FAKE_AWS_DELAY_MS=str(FINISHES_DURING_CUT_MS))
    cut_host = test_network.hosts[0]
    forma = vpcs(6)
    command_id = agent.apply(forma)["command_id"]
    wait_busy(agent, cut_node, command_id)

    test_network.cut(cut_host)
    command = wait_command(agent, command_id, timeout=60)

    assert command["state"] == "Success", command
    assert agent.log_count(unhealthy(cut_node, "no heartbeat")) == 1
    assert agent.log_count(unhealthy(replica)) == 0
    views = {p["node"]: p for p in agent.plugins()}
    assert not views[cut_node]["healthy"]  # still cut when the apply finished
    assert census(agent) == expected(forma)

    test_network.restore(cut_host)
    wait_reregistered(agent, cut_node, cut_plugin)
    assert census(agent) == expected(forma)  # what the cut replica finished did not add a copy


def test_replica_killed_mid_operation_the_other_finishes(
    remote_agent: AgentUnderTest, test_network: HostNetwork
) -> None:
    """A replica's process dies with calls in flight: the agent sees the stream end at once."""
    agent = remote_agent
    victim, doomed = join(agent, test_network, "p1")
    survivor, _ = join(agent, test_network, "p2")
    forma = vpcs(6, FakeDelayMs=2000)
    command_id = agent.apply(forma)["command_id"]
    wait_busy(agent, victim, command_id)

    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(10)
    agent.wait_for_log(unhealthy(victim, "disconnected"), timeout=5)
    command = wait_command(agent, command_id, timeout=60)

    assert command["state"] == "Success", command
    assert census(agent) == expected(forma)
    assert plugin_view(agent, survivor)["healthy"]


def test_agent_restart_remote_plugins_reconnect_by_themselves(
    remote_agent: AgentUnderTest, test_network: HostNetwork, make_agent: MakeAgent
) -> None:
    """The agent goes away and comes back on the same home and address; the plugins are not touched."""
    first = remote_agent
    nodes = dict([join(first, test_network, "p1"), join(first, test_network, "p2")])
    before = network_forma("before")
    assert first.apply_and_wait(before)["state"] == "Success"

    assert first.stop() == 0
    assert all(plugin.poll() is None for plugin in nodes.values()), "a remote plugin exited with its agent"
    second = make_agent(first.home, plugin_address=first.plugin_address)
    second.start()
    for node in nodes:
        second.wait_for_log(registered(node), timeout=30, count=2)  # one log file for both agents

    assert {p["node"]: p["pid"] for p in second.plugins()} == {n: p.pid for n, p in nodes.items()}
    after = network_forma("after")
    assert second.apply_and_wait(after)["state"] == "Success"
    assert sorted(r.type for r in second.cloud().values()) == sorted(
        r["type"] for r in before["resources"] + after["resources"]
    )
    assert all(stop(plugin) == 0 for plugin in nodes.values())


def test_replicas_share_the_work_and_the_namespace_rate_limit(
    remote_agent: AgentUnderTest, test_network: HostNetwork
) -> None:
    """Two replicas both get calls, and together they never exceed the namespace's rate.

    The agent's token bucket is per namespace, burst one second's worth: at 20/s, 40 creates need
    (40 - 20) / 20 = 1.0 s of tokens however many replicas serve them. Two buckets of 20/s would
    finish in half that or less. Calls are seen on both replicas through ``plugin list``'s
    ``in_flight`` (the agent's own count of unanswered calls per plugin), sampled during the apply.
    """
    agent = remote_agent
    rate, count, delay = 20.0, 40, 0.3
    nodes = [join(agent, test_network, f"p{i}", FAKE_AWS_RATE_LIMIT=str(rate))[0] for i in (1, 2)]
    assert {p["rate_limit"] for p in agent.plugins()} == {rate}
    busiest: Counter[str] = Counter()

    def sample() -> None:
        for view in agent.plugins():
            busiest[view["node"]] = max(busiest[view["node"]], view["in_flight"])

    forma = vpcs(count, FakeDelayMs=int(delay * 1000))
    command = wait_command(agent, agent.apply(forma)["command_id"], timeout=60, tick=sample)

    assert command["state"] == "Success", command
    assert census(agent) == expected(forma)
    assert all(busiest[node] > 0 for node in nodes), busiest
    finished = sorted(_seconds(u["updated_at"]) for u in command["updates"])
    min_spread = (count - rate) / rate  # the time the last token waits for
    assert finished[-1] - finished[0] >= 0.7 * min_spread, (finished[0], finished[-1])
    took = _seconds(command["updated_at"]) - _seconds(command["created_at"])
    assert took >= 0.9 * min_spread + delay, took


async def test_a_reply_after_the_agent_ended_the_stream_is_stream_closed() -> None:
    """What a plugin's late reply meets once the agent has ended its stream.

    The agent ends a plugin's stream when it gives up on it (heartbeat timeout, a newer
    announcement of the node, shutdown), and a call the plugin is serving may finish just then.
    The SDK survives that only if the write raises StreamClosed, which ``_Session._serve``
    catches; anything else escapes the session's TaskGroup and kills the plugin process. End to
    end (a frozen host thawed after the agent gave up on it) this happens at random; here, on
    the real transport with nothing in between, every time.
    """

    async def agent_drops_the_plugin(stream: AgentSideStream) -> None:
        return  # ends the call at once, as the hub does for a plugin it gave up on

    server, port = await start_hub_server("127.0.0.1:0", agent_drops_the_plugin)
    connection = PluginConnection(f"127.0.0.1:{port}")
    try:
        assert await connection.stream.receive() is None  # the plugin has seen the end
        with pytest.raises(StreamClosed):
            await connection.stream.send(Heartbeat(1, 0))  # as a late OperationReply would be
    finally:
        await connection.close()
        await server.stop(None)
