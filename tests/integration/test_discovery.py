"""Discovery, extract and adoption on both datastores, with real agent and fake-aws processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import AgentUnderTest, network_forma
from tests.integration.sync_helpers import console, inventory

pytestmark = pytest.mark.timeout(120)

FORMAE = Path(sys.executable).parent / "formae"


def discover(agent: AgentUnderTest, **filters: str) -> dict[str, Any]:
    with agent.client() as client:
        run: dict[str, Any] = client.request("POST", "/discover", json=filters)
        while run["state"] not in ("Success", "Failed"):
            run = client.request("GET", f"/discover/{run['id']}", params={"wait": 30}, timeout=60)
    return run


def extract(agent: AgentUnderTest, query: str, stack: str = "adopted") -> dict[str, Any]:
    with agent.client() as client:
        forma: dict[str, Any] = client.request("GET", "/extract", params={"query": query, "stack": stack})
    return forma


def test_unmanaged_resources_are_discovered_extracted_and_adopted_without_a_create(
    backend_agent: AgentUnderTest,
) -> None:
    backend_agent.apply_and_wait(network_forma())  # managed: never shown as unmanaged
    vpc = console(backend_agent, "create", "FakeAWS::EC2::VPC", '{"CidrBlock": "10.7.0.0/16"}')["native_id"]
    subnet = console(
        backend_agent,
        "create",
        "FakeAWS::EC2::Subnet",
        json.dumps({"CidrBlock": "10.7.1.0/24", "VpcId": vpc}),
    )["native_id"]
    console(backend_agent, "create", "FakeAWS::S3::Bucket", '{"BucketName": "by-hand", "Tags": {"a": "1"}}')

    run = discover(backend_agent)

    assert run["state"] == "Success", run
    assert run["counts"]["new"] == 3
    unmanaged = inventory(backend_agent, "managed:false")
    assert set(unmanaged) == {vpc, subnet, "by-hand"}
    assert all(not r["managed"] and r["stack"] == "$unmanaged" for r in unmanaged.values())
    assert discover(backend_agent)["counts"]["new"] == 0  # found once

    forma = extract(backend_agent, "managed:false")

    by_label = {r["label"]: r for r in forma["resources"]}
    assert by_label[subnet]["properties"]["VpcId"] == {
        "$res": True, "$label": vpc, "$type": "FakeAWS::EC2::VPC", "$stack": "adopted", "$property": "VpcId",
    }  # fmt: skip
    assert "SubnetId" not in by_label[subnet]["properties"]  # read-only: the cloud's to set
    with backend_agent.client() as client:
        plan = client.apply(forma, "reconcile", True, False, "extracted")
    assert plan["summary"] == {"create": 0, "update": 0, "replace": 0, "delete": 0, "adopt": 3}
    assert all(c["adopt"] and c["operation"] == "read" for c in plan["changes"])

    cloud_before = backend_agent.cloud()
    command = backend_agent.apply_and_wait(forma)

    assert command["state"] == "Success", command
    assert backend_agent.cloud() == cloud_before  # nothing created, nothing replaced
    assert inventory(backend_agent, "managed:false") == {}
    adopted = inventory(backend_agent, "stack:adopted")
    assert {r["native_id"] for r in adopted.values()} == {vpc, subnet, "by-hand"}
    assert len(inventory(backend_agent)) == 6  # 3 applied + 3 adopted: each cloud resource once
    with backend_agent.client() as client:
        again = client.apply(extract(backend_agent, "stack:adopted"), "reconcile", True, False, "x")
    assert again["changes"] == []


def test_an_extracted_stack_applies_with_no_changes(agent: AgentUnderTest, tmp_path: Path) -> None:
    assert agent.apply_and_wait(network_forma())["state"] == "Success"
    env = {**os.environ, **agent.cli_env(), "COLUMNS": "200"}

    for form in ("pkl", "yaml", "json"):
        path = tmp_path / f"net.{form}"
        written = subprocess.run(
            [str(FORMAE), "extract", "--query", "stack:net", "-o", form, str(path)],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert written.returncode == 0, written.stderr
        planned = subprocess.run(
            [str(FORMAE), "apply", "--simulate", "-o", "json", str(path)],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert planned.returncode == 0, planned.stderr
        assert json.loads(planned.stdout)["changes"] == [], (form, path.read_text())


def test_the_cli_syncs_lists_drift_and_discovers(agent: AgentUnderTest) -> None:
    assert agent.apply_and_wait(network_forma())["state"] == "Success"
    console(agent, "delete", "net-bucket")
    console(agent, "create", "FakeAWS::S3::Bucket", '{"BucketName": "stray"}')
    env = {**os.environ, **agent.cli_env(), "COLUMNS": "200"}

    def formae(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FORMAE), *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    synced = formae("sync", "--watch")
    drifted = formae("status", "drift", "-o", "json")
    discovered = formae("discover", "--watch")
    stacks = formae("inventory", "resources", "--query", "managed:false", "-o", "json")

    assert synced.returncode == 0, synced.stderr
    assert "1 gone" in synced.stdout
    assert [(d["label"], d["change"]) for d in json.loads(drifted.stdout)] == [("bucket", "deleted")]
    assert discovered.returncode == 0, discovered.stderr
    assert "1 new" in discovered.stdout
    assert [r["native_id"] for r in json.loads(stacks.stdout)] == ["stray"]
