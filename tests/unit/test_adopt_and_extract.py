"""Adoption (planner), extract (agent) and forma rendering: pure, no processes."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from formae.agent.extract import extract
from formae.forma import forma_from_json
from formae.forma.render import render, to_pkl
from formae.model import Mode, Operation, ResourceKey, Target
from formae.plan import ManagedResource, PlanError, TypeSchema, plan
from formae.store import ResourceRecord, StackRecord, TargetRecord, VersionOrigin
from formae.wire.types import ResourceSchema

pytestmark = pytest.mark.timeout(20)

SCHEMAS = {
    "FakeAWS::EC2::VPC": TypeSchema(
        "FakeAWS::EC2::VPC", "VpcId", frozenset({"CidrBlock"}), frozenset({"VpcId"})
    ),
    "FakeAWS::S3::Bucket": TypeSchema("FakeAWS::S3::Bucket", "BucketName", frozenset({"BucketName"})),
}
WIRE_SCHEMAS = {
    "FakeAWS::EC2::VPC": ResourceSchema("FakeAWS::EC2::VPC", "VpcId", ("CidrBlock",), ("VpcId",)),
    "FakeAWS::EC2::Subnet": ResourceSchema(
        "FakeAWS::EC2::Subnet", "SubnetId", ("VpcId", "CidrBlock"), ("SubnetId",)
    ),
}
LOCAL: dict[str, Any] = {"label": "local", "namespace": "FakeAWS", "config": {}}


def _forma(*resources: dict[str, Any]) -> Any:
    return forma_from_json(
        {"stacks": [{"label": "a"}], "targets": [LOCAL], "resources": list(resources)}, "t"
    )


def _unmanaged(resource_type: str, native_id: str, properties: dict[str, Any]) -> ManagedResource:
    return ManagedResource(
        ResourceKey("$unmanaged", resource_type, native_id), "local", native_id, properties, properties
    )


def test_a_forma_naming_a_discovered_resource_adopts_it_reading_when_equal_updating_when_not() -> None:
    found = [
        _unmanaged("FakeAWS::EC2::VPC", "vpc-1", {"CidrBlock": "10.0.0.0/16", "VpcId": "vpc-1"}),
        _unmanaged("FakeAWS::S3::Bucket", "b", {"BucketName": "b", "Tags": {"x": 1}}),
    ]
    forma = _forma(
        {"label": "vpc-1", "type": "FakeAWS::EC2::VPC", "stack": "a", "target": "local",
         "properties": {"CidrBlock": "10.0.0.0/16"}},
        {"label": "logs", "type": "FakeAWS::S3::Bucket", "stack": "a", "target": "local",
         "properties": {"BucketName": "b"}},
    )  # fmt: skip

    changeset = plan(forma, {}, SCHEMAS, Mode.RECONCILE, unmanaged=found)

    by_label = {u.key.label: u for u in changeset.updates}
    assert by_label["vpc-1"].operation is Operation.READ  # matched by label; VpcId is read-only
    assert by_label["logs"].operation is Operation.UPDATE  # matched by its identifier, BucketName
    assert by_label["logs"].patch == [{"op": "remove", "path": "/Tags"}]
    assert all(u.adopt for u in changeset.updates)
    assert changeset.summary() == {"create": 0, "update": 0, "replace": 0, "delete": 0, "adopt": 2}


def test_a_create_only_difference_cannot_be_adopted() -> None:
    found = [_unmanaged("FakeAWS::EC2::VPC", "vpc-1", {"CidrBlock": "10.0.0.0/16"})]
    forma = _forma(
        {"label": "vpc-1", "type": "FakeAWS::EC2::VPC", "stack": "a", "target": "local",
         "properties": {"CidrBlock": "10.9.0.0/16"}},
    )  # fmt: skip

    with pytest.raises(PlanError, match="create-only CidrBlock differ"):
        plan(forma, {}, SCHEMAS, Mode.RECONCILE, unmanaged=found, targets={"local": Target(**LOCAL)})


def _record(
    key: ResourceKey, properties: dict[str, Any], *, managed: bool, desired: Any = None
) -> ResourceRecord:
    return ResourceRecord(
        *key, "local", properties.get("SubnetId") or properties.get("VpcId"), properties,
        desired if desired is not None else properties, 1, False, None, datetime.now(UTC),
        managed, VersionOrigin.COMMAND if managed else VersionOrigin.DISCOVERY,
    )  # fmt: skip


def test_extract_restores_references_by_identifier_and_leaves_read_only_out() -> None:
    vpc = _record(
        ResourceKey("$unmanaged", "FakeAWS::EC2::VPC", "vpc-1"),
        {"VpcId": "vpc-1", "CidrBlock": "c"},
        managed=False,
    )
    subnet = _record(
        ResourceKey("$unmanaged", "FakeAWS::EC2::Subnet", "subnet-1"),
        {"SubnetId": "subnet-1", "VpcId": "vpc-1", "CidrBlock": "d"},
        managed=False,
    )

    forma = extract([vpc, subnet], [vpc, subnet], [], [TargetRecord("local", "FakeAWS")], WIRE_SCHEMAS.get,
                    stack_for_unmanaged="kept")  # fmt: skip

    assert forma["stacks"] == [{"label": "kept"}]
    assert forma["targets"] == [{"label": "local", "namespace": "FakeAWS", "config": {}}]
    [vpc_out, subnet_out] = forma["resources"]
    assert vpc_out == {"label": "vpc-1", "type": "FakeAWS::EC2::VPC", "stack": "kept", "target": "local",
                       "properties": {"CidrBlock": "c"}}  # fmt: skip
    assert subnet_out["properties"] == {
        "VpcId": {"$res": True, "$label": "vpc-1", "$type": "FakeAWS::EC2::VPC", "$stack": "kept",
                  "$property": "VpcId"},
        "CidrBlock": "d",
    }  # fmt: skip
    forma_from_json(forma, "extracted")  # a valid forma


def test_a_managed_resource_is_extracted_as_last_desired_with_its_stack_and_policies() -> None:
    desired = {"CidrBlock": "c"}
    vpc = _record(ResourceKey("net", "FakeAWS::EC2::VPC", "vpc"), {"VpcId": "vpc-1", "CidrBlock": "c"},
                  managed=True, desired=desired)  # fmt: skip
    policy = {"type": "ttl", "ttl_seconds": 60.0}
    stacks = [StackRecord("net", "the network", [policy])]

    forma = extract([vpc], [vpc], stacks, [TargetRecord("local", "FakeAWS")], WIRE_SCHEMAS.get,
                    stack_for_unmanaged="x")  # fmt: skip

    assert forma["stacks"] == [{"label": "net", "description": "the network", "policies": [policy]}]
    assert forma["resources"][0]["properties"] == desired


@pytest.mark.skipif(shutil.which("pkl") is None, reason="needs the pkl CLI (.ci/install-pkl)")
def test_pkl_output_evaluates_to_the_same_json(tmp_path: Path) -> None:
    forma = {
        "stacks": [{"label": "a", "policies": [{"type": "auto-reconcile", "interval_seconds": 30.5}]}],
        "targets": [{"label": "t", "namespace": "N", "config": {"region": "r", "empty": {}}}],
        "resources": [
            {"label": "x", "type": "N::A::B", "stack": "a", "target": "t",
             "properties": {"L": [1, "two", {"k": True}, []], "$res": True, "class": 'q"\\\n', "n": 2.0}},
        ],
    }  # fmt: skip
    path = tmp_path / "f.pkl"
    path.write_text(to_pkl(forma))

    evaluated = subprocess.run(
        ["pkl", "eval", "-f", "json", str(path)], capture_output=True, text=True, check=True
    )

    assert json.loads(evaluated.stdout) == forma
    assert json.loads(render(forma, "json")) == forma
