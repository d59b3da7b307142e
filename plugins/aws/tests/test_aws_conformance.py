"""The aws plugin passes formae's conformance kit (``formae plugin conformance``) on moto's server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_testing import CREDENTIALS, MotoServer

pytestmark = pytest.mark.timeout(150)

PLUGIN = Path(sys.executable).parent / "aws-plugin"

SCENARIOS = [
    ("AWS::SQS::Queue", {"QueueName": "conformance"}, {"QueueName": "conformance", "VisibilityTimeout": 90}),
    (
        "AWS::DynamoDB::Table",
        {
            "TableName": "conformance",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
        {
            "TableName": "conformance",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
            "Tags": [{"Key": "team", "Value": "data"}],
        },
    ),
]


def test_the_aws_plugin_conforms(aws: MotoServer, tmp_path: Path) -> None:
    target = tmp_path / "target.json"
    target.write_text(json.dumps({"region": "us-east-1", "endpoint_url": aws.url}))
    args = [sys.executable, "-m", "formae", "plugin", "conformance", str(PLUGIN), "--output", "json"]
    args += ["--target-config", str(target)]
    for index, (type, properties, update) in enumerate(SCENARIOS):
        (tmp_path / f"create-{index}.json").write_text(json.dumps(properties))
        (tmp_path / f"update-{index}.json").write_text(json.dumps(update))
        args += ["--type", type, "--properties", str(tmp_path / f"create-{index}.json")]
        args += ["--update-properties", str(tmp_path / f"update-{index}.json")]
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=140, check=False, env={**os.environ, **CREDENTIALS}
    )
    checks = {check["name"]: check for check in json.loads(done.stdout)["checks"]}

    failed = {name: c["detail"] for name, c in checks.items() if c["outcome"] == "fail"}
    assert failed == {}, done.stderr[-3000:]
    assert done.returncode == 0
    assert checks["AWS::DynamoDB::Table: create retried with the same idempotency key"]["outcome"] == "pass"
    assert checks["errors carry codes"]["outcome"] == "pass"
