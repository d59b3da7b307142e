"""The distributed plugin core end to end: real agent, real fake-aws processes, 127.0.0.1 only."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from formae.cli.client import Rejected
from formae.testing import pid_alive, wait_until
from tests.integration.conftest import MakeAgent
from tests.integration.harness import AgentUnderTest, network_forma, start_plugin_by_hand

pytestmark = pytest.mark.timeout(90)


def _parent_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


def test_apply_forma_distributed_plugin(agent: AgentUnderTest) -> None:
    """The seed's TestMetastructure_ApplyForma_DistributedPlugin."""
    [plugin] = agent.plugins()
    assert plugin["namespace"] == "FakeAWS"
    assert plugin["location"] == "local"
    assert plugin["pid"] != agent.pid
    assert _parent_of(plugin["pid"]) == agent.pid

    command = agent.apply_and_wait(network_forma())

    assert command["state"] == "Success", command
    cloud = {r.type: r for r in agent.cloud().values()}
    assert set(cloud) == {"FakeAWS::EC2::VPC", "FakeAWS::EC2::Subnet", "FakeAWS::S3::Bucket"}
    assert len(agent.cloud()) == 3
    vpc_id = cloud["FakeAWS::EC2::VPC"].native_id
    assert cloud["FakeAWS::EC2::Subnet"].properties["VpcId"] == vpc_id
    assert vpc_id.startswith("vpc-")


def test_killed_plugin_is_restarted_and_usable(agent: AgentUnderTest) -> None:
    [first] = agent.plugins()
    os.kill(first["pid"], signal.SIGKILL)

    agent.wait_for_log(r"Plugin unhealthy namespace=FakeAWS", timeout=5)
    agent.wait_for_log(r"Plugin registered namespace=FakeAWS", timeout=15, count=2)
    [second] = agent.plugins()
    assert second["healthy"]
    assert second["pid"] != first["pid"]
    assert agent.log_count(r"Plugin process exited name=fake-aws code=-9; restarting") == 1

    assert agent.apply_and_wait(network_forma())["state"] == "Success"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_plugins_die_with_the_agent(agent: AgentUnderTest, signum: int) -> None:
    [plugin] = agent.plugins()
    assert pid_alive(plugin["pid"])

    agent.signal(signum)
    stopped_at = time.monotonic()
    wait_until(lambda: not pid_alive(plugin["pid"]), timeout=2.0, what="the plugin process to exit")

    assert time.monotonic() - stopped_at < 2.0
    assert agent.process is not None
    assert agent.process.wait(10) is not None


def test_plugin_started_by_hand_registers_as_remote(tmp_path: Path, make_agent: MakeAgent) -> None:
    agent = make_agent(tmp_path / "bare-home").start()  # no plugin installed: nothing is spawned
    plugin = start_plugin_by_hand(agent, "fake-aws@elsewhere")
    try:
        agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=fake-aws@elsewhere .*location=remote")
        [registered] = agent.plugins()
        assert registered["location"] == "remote"
        assert registered["pid"] == plugin.pid

        assert agent.apply_and_wait(network_forma())["state"] == "Success"
    finally:
        plugin.terminate()
        assert plugin.wait(10) == 0


def test_namespace_without_plugin_is_a_clear_error(agent: AgentUnderTest) -> None:
    forma = network_forma()
    forma["targets"].append({"label": "aws", "namespace": "AWS", "config": {}})
    forma["resources"].append(
        {"label": "q", "type": "AWS::SQS::Queue", "stack": "net", "target": "aws", "properties": {}}
    )

    with pytest.raises(Rejected) as rejected:
        agent.apply(forma)

    assert rejected.value.status == 400
    assert rejected.value.problems == ["no plugin registered for namespace AWS (registered: FakeAWS)"]
    assert agent.cloud() == {}


def test_in_progress_operation_is_polled_to_its_end(agent: AgentUnderTest) -> None:
    forma = network_forma(vpc={"FakeInProgressPolls": 4})

    command = agent.apply_and_wait(forma)

    assert command["state"] == "Success", command
    vpc = next(u for u in command["updates"] if u["label"] == "vpc")
    assert vpc["request_id"].startswith("req-")
    assert vpc["attempts"] == 1
    assert len(agent.cloud()) == 3


def test_throttling_is_retried_with_backoff(agent: AgentUnderTest) -> None:
    forma = network_forma(bucket={"FakeFailWith": "Throttling", "FakeFailTimes": 2})

    command = agent.apply_and_wait(forma)

    assert command["state"] == "Success", command
    bucket = next(u for u in command["updates"] if u["label"] == "bucket")
    assert bucket["attempts"] == 3
    assert agent.log_count(r"retrying create net/FakeAWS::S3::Bucket/bucket in \S+s after Throttling") == 2


def test_unrecoverable_failure_fails_dependants_and_lets_the_rest_finish(agent: AgentUnderTest) -> None:
    forma = network_forma(vpc={"FakeFailWith": "AccessDenied", "FakeFailTimes": 1})

    command = agent.apply_and_wait(forma)

    states = {u["label"]: (u["state"], u["error_code"]) for u in command["updates"]}
    assert command["state"] == "Failed"
    assert states == {
        "vpc": ("Failed", "AccessDenied"),
        "subnet": ("Failed", "DependencyFailure"),
        "bucket": ("Success", None),
    }
    assert [r.type for r in agent.cloud().values()] == ["FakeAWS::S3::Bucket"]


def _install_script(home: Path, name: str, body: str) -> None:
    executable = home / "plugins" / name / "v0.1.0" / f"{name}-plugin"
    executable.parent.mkdir(parents=True)
    executable.write_text(f"#!/bin/sh\n{body}\n")
    executable.chmod(0o755)


def test_crashing_plugins_back_off_refused_ones_stop_and_broken_installs_are_skipped(
    agent_home: Path, make_agent: MakeAgent
) -> None:
    _install_script(agent_home, "crashy", "echo crashing >&2; exit 3")
    _install_script(agent_home, "refused", "exit 78")
    (agent_home / "plugins" / "half-copied" / "v1.0.0").mkdir(parents=True)
    (agent_home / "plugins" / "bad-version" / "vlatest").mkdir(parents=True)

    agent = make_agent(agent_home).start()

    agent.wait_for_log(r"Plugin registered namespace=FakeAWS", timeout=15)  # the good one is unaffected
    agent.wait_for_log(r"plugin refused was refused by this agent .*not restarting")
    delays = [
        float(d)
        for d in re.findall(
            r"name=crashy code=3; restarting in ([\d.]+)s",
            agent.wait_for_log(r"(?s)(?:name=crashy code=3; restarting in [\d.]+s.*){3}", timeout=10),
        )
    ]
    assert delays[:3] == [0.1, 0.2, 0.4]
    assert "[crashy pid=" in agent.log()
    assert "crashing" in agent.log()
    assert agent.log_count(r"Plugin process started name=refused") == 1
    assert agent.log_count(r"skipping plugin half-copied: no runnable version") == 1
    assert agent.log_count(r"skipping .*vlatest: 'latest' is not a semantic version") == 1
    assert agent.apply_and_wait(network_forma())["state"] == "Success"
