"""The benchmark's forma: independent resources mixed with reference chains.

Per group of ten: a VPC, four subnets that refer to it, five buckets. Half the resources are
independent, half sit on a two-level chain, so the DAG and reference resolution are exercised.
"""

from __future__ import annotations

from typing import Any

STACK = "bench"
TARGET = {"label": "bench", "namespace": "FakeAWS", "config": {"region": "local-1"}}


def _ref(label: str) -> dict[str, Any]:
    return {
        "$res": True,
        "$label": label,
        "$type": "FakeAWS::EC2::VPC",
        "$stack": STACK,
        "$property": "VpcId",
    }


def _resource(label: str, kind: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "label": label,
        "type": f"FakeAWS::{kind}",
        "stack": STACK,
        "target": "bench",
        "properties": properties,
    }


def _group(g: int) -> list[dict[str, Any]]:
    vpc = f"vpc-{g}"
    return [
        _resource(vpc, "EC2::VPC", {"CidrBlock": f"10.{g % 256}.0.0/16", "Group": g}),
        *(
            _resource(
                f"subnet-{g}-{i}", "EC2::Subnet", {"CidrBlock": f"10.{g % 256}.{i}.0/24", "VpcId": _ref(vpc)}
            )
            for i in range(4)
        ),
        *(_resource(f"bucket-{g}-{i}", "S3::Bucket", {"BucketName": f"bench-{g}-{i}"}) for i in range(5)),
    ]


def forma(count: int) -> dict[str, Any]:
    """A forma of ``count`` resources (rounded up to a multiple of ten)."""
    groups = max(1, -(-count // 10))
    return {
        "stacks": [{"label": STACK}],
        "targets": [TARGET],
        "resources": [r for g in range(groups) for r in _group(g)],
    }


def network(stack: str) -> dict[str, Any]:
    """The seed's first apply: a VPC, a subnet that refers to it, and a bucket."""
    target = {**TARGET, "label": "local"}
    return {
        "stacks": [{"label": stack}],
        "targets": [target],
        "resources": [
            {
                "label": "vpc",
                "type": "FakeAWS::EC2::VPC",
                "stack": stack,
                "target": "local",
                "properties": {"CidrBlock": "10.0.0.0/16"},
            },
            {
                "label": "subnet",
                "type": "FakeAWS::EC2::Subnet",
                "stack": stack,
                "target": "local",
                "properties": {"CidrBlock": "10.0.1.0/24", "VpcId": {**_ref("vpc"), "$stack": stack}},
            },
            {
                "label": "bucket",
                "type": "FakeAWS::S3::Bucket",
                "stack": stack,
                "target": "local",
                "properties": {"BucketName": f"{stack}-bucket"},
            },
        ],
    }
