"""fake-aws-cloud: the console tests and demos change the cloud with, behind the agent's back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from formae_fake_aws.cloud import read_cloud
from formae_fake_aws.console import main

pytestmark = pytest.mark.timeout(10)


def _run(capsys: pytest.CaptureFixture[str], cloud: Path, *argv: str) -> Any:
    main(["--state-file", str(cloud), *argv])
    return json.loads(capsys.readouterr().out)


def test_create_update_delete_change_what_the_plugin_sees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = tmp_path / "cloud.db"
    vpc = _run(capsys, cloud, "create", "FakeAWS::EC2::VPC", '{"CidrBlock": "10.9.0.0/16"}')
    assert vpc["native_id"].startswith("vpc-")
    assert vpc["properties"] == {"CidrBlock": "10.9.0.0/16", "VpcId": vpc["native_id"]}
    _run(capsys, cloud, "create", "FakeAWS::S3::Bucket", '{"BucketName": "b", "Tags": {"a": "1"}}')

    updated = _run(capsys, cloud, "update", "b", '{"Tags": {"a": "2"}, "Extra": null}')

    assert updated["properties"] == {"BucketName": "b", "Tags": {"a": "2"}}
    assert read_cloud(cloud)["b"].properties == {"BucketName": "b", "Tags": {"a": "2"}}
    assert [r["native_id"] for r in _run(capsys, cloud, "list", "--type", "FakeAWS::S3::Bucket")] == ["b"]
    assert _run(capsys, cloud, "delete", "b")["deleted"]["native_id"] == "b"
    assert set(read_cloud(cloud)) == {vpc["native_id"]}


def test_a_missing_resource_exits_1_and_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = str(tmp_path / "cloud.db")
    with pytest.raises(SystemExit) as missing:
        main(["--state-file", cloud, "delete", "nothing"])
    assert missing.value.code == 1
    with pytest.raises(SystemExit) as bad:
        main(["--state-file", cloud, "create", "FakeAWS::S3::Bucket", "[1]"])
    assert bad.value.code == 2
    assert "no resource 'nothing'" in capsys.readouterr().err
