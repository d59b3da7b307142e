"""The apply pipeline on both datastores: reconcile, patch, update, replace, destroy, cancel, crash."""

from __future__ import annotations

import copy
import signal
from collections import Counter
from typing import Any

import pytest

from formae.cli.client import Rejected
from formae.testing import pid_alive, wait_until
from tests.integration.conftest import MakeAgent
from tests.integration.harness import AgentUnderTest, network_forma

pytestmark = pytest.mark.timeout(120)


def _updates(command: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["update_id"]: u for u in command["updates"]}


def _cloud_types(agent: AgentUnderTest) -> Counter[str]:
    return Counter(r.type for r in agent.cloud().values())


def _native(agent: AgentUnderTest, resource_type: str) -> str:
    [resource] = [r for r in agent.cloud().values() if r.type == resource_type]
    return resource.native_id


def test_reconcile_deletes_what_the_forma_no_longer_lists(backend_agent: AgentUnderTest) -> None:
    assert backend_agent.apply_and_wait(network_forma())["state"] == "Success"
    forma = network_forma()
    forma["resources"] = [r for r in forma["resources"] if r["label"] != "bucket"]

    command = backend_agent.apply_and_wait(forma)

    assert command["state"] == "Success", command
    assert [(u["operation"], u["label"]) for u in command["updates"]] == [("delete", "bucket")]
    assert _cloud_types(backend_agent) == {"FakeAWS::EC2::VPC": 1, "FakeAWS::EC2::Subnet": 1}
    with backend_agent.client() as client:
        assert sorted(r["label"] for r in client.inventory("resources")) == ["subnet", "vpc"]


def test_update_in_place_carries_a_json_patch(backend_agent: AgentUnderTest) -> None:
    backend_agent.apply_and_wait(network_forma())
    bucket_id = _native(backend_agent, "FakeAWS::S3::Bucket")

    command = backend_agent.apply_and_wait(network_forma(bucket={"Tags": {"env": "dev"}}))

    assert command["state"] == "Success", command
    assert [(u["operation"], u["label"]) for u in command["updates"]] == [("update", "bucket")]
    assert backend_agent.cloud()[bucket_id].properties["Tags"] == {"env": "dev"}
    with backend_agent.client() as client:
        [bucket] = client.inventory("resources", "label:bucket")
    assert bucket["version"] == 2


def test_create_only_change_replaces_in_dependency_safe_order(backend_agent: AgentUnderTest) -> None:
    backend_agent.apply_and_wait(network_forma())
    old_vpc = _native(backend_agent, "FakeAWS::EC2::VPC")
    forma = network_forma(vpc={"CidrBlock": "10.1.0.0/16"})

    command = backend_agent.apply_and_wait(forma)

    assert command["state"] == "Success", command
    updates = _updates(command)
    assert set(updates) == {
        "delete:net/FakeAWS::EC2::Subnet/subnet",
        "delete:net/FakeAWS::EC2::VPC/vpc",
        "create:net/FakeAWS::EC2::VPC/vpc",
        "create:net/FakeAWS::EC2::Subnet/subnet",
    }
    # a VPC with subnets cannot be deleted: no ResourceConflict retries means the order was right
    assert all(u["attempts"] == 1 for u in updates.values())
    new_vpc = _native(backend_agent, "FakeAWS::EC2::VPC")
    assert new_vpc != old_vpc
    subnet = next(r for r in backend_agent.cloud().values() if r.type == "FakeAWS::EC2::Subnet")
    assert subnet.properties["VpcId"] == new_vpc
    assert _cloud_types(backend_agent) == {
        "FakeAWS::EC2::VPC": 1,
        "FakeAWS::EC2::Subnet": 1,
        "FakeAWS::S3::Bucket": 1,
    }


def test_patch_only_adds_and_a_later_reconcile_needs_force(backend_agent: AgentUnderTest) -> None:
    backend_agent.apply_and_wait(network_forma())
    patch = copy.deepcopy(network_forma())
    patch["resources"] = [
        {
            "label": "logs",
            "type": "FakeAWS::S3::Bucket",
            "stack": "net",
            "target": "local",
            "properties": {"BucketName": "net-logs"},
        }
    ]

    command = backend_agent.apply_and_wait(patch, mode="patch")

    assert command["state"] == "Success"
    assert _cloud_types(backend_agent)["FakeAWS::S3::Bucket"] == 2
    with pytest.raises(Rejected) as rejected:
        backend_agent.apply(network_forma())
    assert rejected.value.status == 409
    assert "stack 'net' was changed out of band" in rejected.value.problems[0]

    with backend_agent.client() as client:
        forced = client.apply(network_forma(), "reconcile", False, True, "forma")
    assert backend_agent.wait_command(forced["command_id"])["state"] == "Success"
    assert _cloud_types(backend_agent)["FakeAWS::S3::Bucket"] == 1


def test_simulate_plans_and_changes_nothing(backend_agent: AgentUnderTest) -> None:
    with backend_agent.client() as client:
        plan = client.apply(network_forma(), "reconcile", True, False, "forma")
        assert client.commands() == []

    assert plan["command_id"] is None
    assert plan["summary"] == {"create": 3, "update": 0, "replace": 0, "delete": 0}
    subnet = next(c for c in plan["changes"] if c["label"] == "subnet")
    assert subnet["depends_on"] == ["create:net/FakeAWS::EC2::VPC/vpc"]
    assert backend_agent.cloud() == {}


@pytest.mark.parametrize("how", ["query", "forma"])
def test_destroy_deletes_in_reverse_dependency_order(backend_agent: AgentUnderTest, how: str) -> None:
    backend_agent.apply_and_wait(network_forma())

    with backend_agent.client() as client:
        if how == "query":
            submitted = client.destroy(None, "stack:net", False, "query")
        else:
            submitted = client.destroy(network_forma(), None, False, "forma")
    command = backend_agent.wait_command(submitted["command_id"])

    assert command["state"] == "Success", command
    vpc_delete = _updates(command)["delete:net/FakeAWS::EC2::VPC/vpc"]
    assert vpc_delete["depends_on"] == ["delete:net/FakeAWS::EC2::Subnet/subnet"]
    assert vpc_delete["attempts"] == 1
    assert backend_agent.cloud() == {}
    with backend_agent.client() as client:
        assert client.inventory("resources") == []


def test_cancel_starts_nothing_new_and_lets_in_flight_work_finish(backend_agent: AgentUnderTest) -> None:
    forma = network_forma(vpc={"FakeDelayMs": 1500})
    command_id = backend_agent.apply(forma)["command_id"]
    with backend_agent.client() as client:
        wait_until(
            lambda: (
                _updates(client.command(command_id))["create:net/FakeAWS::EC2::VPC/vpc"]["state"]
                == "Dispatching"
            ),
            10,
            "the VPC create to be in flight",
        )
        assert client.cancel(command_id)["state"] == "Canceling"

    command = backend_agent.wait_command(command_id)

    states = {u["label"]: u["state"] for u in command["updates"]}
    assert command["state"] == "Canceled"
    assert states == {"vpc": "Success", "subnet": "Canceled", "bucket": "Success"}
    assert _cloud_types(backend_agent) == {"FakeAWS::EC2::VPC": 1, "FakeAWS::S3::Bucket": 1}


def _many_buckets(count: int, polls: int) -> dict[str, Any]:
    forma = network_forma(vpc={"FakeInProgressPolls": polls}, subnet={"FakeInProgressPolls": polls})
    forma["resources"] += [
        {
            "label": f"b{i}",
            "type": "FakeAWS::S3::Bucket",
            "stack": "net",
            "target": "local",
            "properties": {"BucketName": f"bucket-{i}", "FakeInProgressPolls": polls},
        }
        for i in range(count)
    ]
    return forma


def test_agent_killed_mid_apply_resumes_and_creates_nothing_twice(
    backend_agent: AgentUnderTest, make_agent: MakeAgent
) -> None:
    command_id = backend_agent.apply(_many_buckets(20, polls=40))["command_id"]
    with backend_agent.client() as client:
        wait_until(
            lambda: (
                sum(
                    u["state"] == "InProgress" and bool(u["request_id"])
                    for u in client.command(command_id)["updates"]
                )
                >= 10
            ),
            15,
            "operations to be InProgress",
        )
    [plugin_pid] = backend_agent.plugin_pids()

    backend_agent.signal(signal.SIGKILL)
    assert backend_agent.process is not None
    backend_agent.process.wait(10)
    wait_until(lambda: not pid_alive(plugin_pid), 2, "the plugin to die with the agent")

    restarted = make_agent(backend_agent.home, store_url=backend_agent.store_url).start()
    restarted.wait_for_log(rf"resuming command {command_id}")
    command = restarted.wait_command(command_id, timeout=60)

    assert command["state"] == "Success", command
    assert Counter(r.type for r in restarted.cloud().values()) == {
        "FakeAWS::EC2::VPC": 1,
        "FakeAWS::EC2::Subnet": 1,
        "FakeAWS::S3::Bucket": 21,
    }
    names = [r.native_id for r in restarted.cloud().values() if r.type == "FakeAWS::S3::Bucket"]
    assert len(names) == len(set(names))
    with restarted.client() as client:
        assert len(client.inventory("resources")) == 23


def test_a_cancel_interrupted_by_a_crash_still_finishes_what_plugins_had_started(
    backend_agent: AgentUnderTest, make_agent: MakeAgent
) -> None:
    command_id = backend_agent.apply(_many_buckets(6, polls=60))["command_id"]
    with backend_agent.client() as client:

        def in_progress() -> set[str]:
            return {u["label"] for u in client.command(command_id)["updates"] if u["state"] == "InProgress"}

        started = wait_until(
            lambda: (found := in_progress()) >= {"vpc", "b0", "b1"} and found, 15, "operations"
        )
        assert client.cancel(command_id)["state"] == "Canceling"
    backend_agent.signal(signal.SIGKILL)
    assert backend_agent.process is not None
    backend_agent.process.wait(10)

    restarted = make_agent(backend_agent.home, store_url=backend_agent.store_url).start()
    command = restarted.wait_command(command_id, timeout=60)

    states = {u["label"]: u["state"] for u in command["updates"]}
    assert command["state"] == "Canceled"
    assert states["subnet"] == "Canceled"  # never sent: dropped
    assert all(states[label] == "Success" for label in started)  # sent: carried to the end and recorded
    in_cloud = Counter(r.properties.get("BucketName") or r.type for r in restarted.cloud().values())
    assert all(count == 1 for count in in_cloud.values())
    with restarted.client() as client:
        managed = {r["label"] for r in client.inventory("resources")}
    assert managed == {label for label, state in states.items() if state == "Success"}


def test_a_dependency_cycle_is_refused_before_anything_runs(backend_agent: AgentUnderTest) -> None:
    def bucket(label: str, refers_to: str) -> dict[str, Any]:
        reference = {
            "$res": True,
            "$label": refers_to,
            "$type": "FakeAWS::S3::Bucket",
            "$stack": "net",
            "$property": "BucketName",
        }
        return {
            "label": label,
            "type": "FakeAWS::S3::Bucket",
            "stack": "net",
            "target": "local",
            "properties": {"BucketName": label, "LogsTo": reference},
        }

    forma = network_forma()
    forma["resources"] += [bucket("a", "b"), bucket("b", "a")]

    with pytest.raises(Rejected) as rejected:
        backend_agent.apply(forma)

    assert rejected.value.status == 400
    assert any("cycle" in problem for problem in rejected.value.problems), rejected.value.problems
    assert backend_agent.cloud() == {}
    with backend_agent.client() as client:
        assert client.commands() == []
