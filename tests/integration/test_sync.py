"""Sync and drift on both datastores, real agent and fake-aws: the cloud changed behind the agent's back."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from formae.cli.client import Rejected
from tests.integration.harness import AgentUnderTest, network_forma
from tests.integration.sync_helpers import apply_forced, console, drift, inventory, sync

pytestmark = pytest.mark.timeout(120)


def test_deleted_in_the_cloud_is_synced_listed_as_drift_and_recreated_by_apply(
    backend_agent: AgentUnderTest,
) -> None:
    assert backend_agent.apply_and_wait(network_forma())["state"] == "Success"
    console(backend_agent, "delete", "net-bucket")

    run = sync(backend_agent)

    assert run["state"] == "Success", run
    assert (run["counts"]["gone"], run["counts"]["unchanged"]) == (1, 2)
    [gone] = drift(backend_agent)
    assert (gone["label"], gone["change"], gone["after"]) == ("bucket", "deleted", None)
    assert set(inventory(backend_agent)) == {"vpc", "subnet"}

    command = backend_agent.apply_and_wait(network_forma())  # no --force: recreating loses nothing

    assert command["state"] == "Success", command
    assert [(u["operation"], u["label"]) for u in command["updates"]] == [("create", "bucket")]
    assert "net-bucket" in backend_agent.cloud()
    assert drift(backend_agent) == []
    assert sync(backend_agent)["counts"]["unchanged"] == 3


def test_a_property_edited_in_the_cloud_needs_force_and_is_put_back(backend_agent: AgentUnderTest) -> None:
    backend_agent.apply_and_wait(network_forma())
    console(backend_agent, "update", "net-bucket", '{"Tags": {"owner": "someone"}}')

    assert sync(backend_agent)["counts"]["changed"] == 1

    [edited] = drift(backend_agent)
    assert edited["change"] == "changed"
    assert edited["patch"] == [{"op": "add", "path": "/Tags", "value": {"owner": "someone"}}]
    assert inventory(backend_agent)["bucket"]["drift"] == "changed in the cloud"
    with pytest.raises(Rejected) as refused:
        backend_agent.apply(network_forma())
    assert refused.value.status == 409
    assert any("changed in the cloud: FakeAWS::S3::Bucket bucket" in p for p in refused.value.problems)
    assert any("formae apply --force" in p for p in refused.value.problems)
    with backend_agent.client() as client:
        plan = client.apply(network_forma(), "reconcile", True, True, "forma")
    assert [c["patch"] for c in plan["changes"]] == [[{"op": "remove", "path": "/Tags"}]]

    command = apply_forced(backend_agent, network_forma())

    assert command["state"] == "Success", command
    assert backend_agent.cloud()["net-bucket"].properties == {"BucketName": "net-bucket"}
    assert drift(backend_agent) == []


def test_sync_during_an_apply_of_the_same_resources_changes_and_duplicates_nothing(
    backend_agent: AgentUnderTest,
) -> None:
    runs: list[dict[str, Any]] = []
    for forma in (_buckets(12, FakeDelayMs=1500), _buckets(12, FakeDelayMs=1500, Tags={"v": "2"})):
        command = backend_agent.apply(forma)["command_id"]
        during = []  # syncs started while the command was not finished
        while _state(backend_agent, command) not in ("Success", "Failed", "Canceled"):
            during.append(sync(backend_agent))
        assert backend_agent.wait_command(command)["state"] == "Success"
        assert during, "no sync ran during the apply: the apply was faster than the test thought"
        runs.extend(during)

    assert all(r["counts"]["changed"] == r["counts"]["gone"] == 0 for r in runs), runs
    assert all(r["counts"]["failed"] == 0 for r in runs), runs
    assert any(r["counts"]["skipped"] for r in runs), runs
    cloud = backend_agent.cloud()
    managed = inventory(backend_agent)
    assert Counter(r.type for r in cloud.values()) == {"FakeAWS::S3::Bucket": 12}
    assert {r["native_id"] for r in managed.values()} == set(cloud)  # 0 lost, 0 duplicated, 0 orphaned
    assert all(r["properties"] == cloud[r["native_id"]].properties for r in managed.values())
    assert drift(backend_agent) == []


def _buckets(count: int, **properties: Any) -> dict[str, Any]:
    forma = network_forma("race")
    forma["resources"] = [
        {
            "label": f"b{i}",
            "type": "FakeAWS::S3::Bucket",
            "stack": "race",
            "target": "local",
            "properties": {"BucketName": f"race-{i}", **properties},
        }
        for i in range(count)
    ]
    return forma


def _state(agent: AgentUnderTest, command_id: str) -> str:
    with agent.client() as client:
        return str(client.command(command_id, updates=False)["state"])
