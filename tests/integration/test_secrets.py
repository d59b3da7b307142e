"""Secrets with a real agent and fake-aws: the plugin gets them, nothing and nobody else sees them.

Each secret is a random string searched for, byte for byte, in every file under the agent's home
(datastore, its WAL, logs, run files), in every CLI and API output, and in every command line on
the host. fake-aws's cloud is kept outside the home: the cloud is where a secret is meant to go,
and it is checked to have arrived there in clear.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from formae_fake_aws.cloud import read_cloud

from tests.integration.conftest import MakeAgent
from tests.integration.harness import AgentUnderTest
from tests.secret_traces import Cli, assert_nowhere, opaque, secret

pytestmark = pytest.mark.timeout(180)


def forma(values: dict[str, str], key_file: Path, *, broken: bool = False) -> dict[str, Any]:
    resources: list[dict[str, Any]] = [
        {
            "label": "vpc",
            "type": "FakeAWS::EC2::VPC",
            "stack": "sec",
            "target": "cloud",
            "properties": {
                "CidrBlock": "10.0.0.0/16",
                "Description": {"$secret": {"env": "SEC_DB_PASSWORD"}},
            },
        },
        {
            "label": "bucket",
            "type": "FakeAWS::S3::Bucket",
            "stack": "sec",
            "target": "cloud",
            "properties": {
                "BucketName": "sec-bucket",
                "Name": opaque(values["inline"]),
                "Tags": [{"Key": "token", "Value": {"$secret": {"file": str(key_file)}}}],
                "Description": opaque(values["once"], **{"$strategy": "SetOnce"}),
            },
        },
    ]
    if broken:  # fake-aws refuses it, quoting the value it was given: a secret, in its error message
        resources.append(
            {
                "label": "subnet",
                "type": "FakeAWS::EC2::Subnet",
                "stack": "sec",
                "target": "cloud",
                "properties": {"CidrBlock": "10.0.1.0/24", "VpcId": opaque(values["failing"])},
            }
        )
    return {
        "stacks": [{"label": "sec"}],
        "targets": [
            {
                "label": "cloud",
                "namespace": "FakeAWS",
                "config": {"region": "eu", "ApiKey": opaque(values["target"])},
            }
        ],
        "resources": resources,
    }


def cloud_by_kind(path: Path) -> dict[str, Any]:
    return {r.type.rsplit("::", 1)[1].lower(): r for r in read_cloud(path).values()}


@pytest.fixture
def values() -> dict[str, str]:
    return {k: secret(k) for k in ("env", "file", "inline", "once", "target", "failing")}


@pytest.fixture
def secret_agent(
    agent_home: Path, make_agent: MakeAgent, tmp_path: Path, values: dict[str, str]
) -> AgentUnderTest:
    env = {"SEC_DB_PASSWORD": values["env"], "FAKE_AWS_STATE_FILE": str(tmp_path / "cloud.db")}
    running = make_agent(agent_home, env=env).start()
    running.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
    return running


def test_secrets_reach_the_plugin_and_leave_no_trace(
    secret_agent: AgentUnderTest, tmp_path: Path, values: dict[str, str]
) -> None:
    agent, run = secret_agent, Cli(secret_agent)
    key_file = tmp_path / "token.txt"
    key_file.write_text(values["file"] + "\n")
    path = tmp_path / "sec.json"
    path.write_text(json.dumps(forma(values, key_file)))

    run("apply", "--watch", str(path))
    cloud = cloud_by_kind(tmp_path / "cloud.db")
    assert values["inline"] in json.dumps(cloud["bucket"].properties)  # the plugin got it in clear
    assert values["file"] in json.dumps(cloud["bucket"].properties)
    assert values["env"] in json.dumps(cloud["vpc"].properties)

    for output in ("json", "yaml", "human"):
        run("inventory", "resources", "--query", "stack:sec", "-o", output)
        run("inventory", "targets", "-o", output)
        run("status", "command", "-o", output)
    listed = json.loads(run("inventory", "resources", "--query", "stack:sec", "-o", "json").stdout)
    bucket = next(r for r in listed if r["label"] == "bucket")
    assert bucket["properties"]["Name"] == "(secret)"
    assert bucket["properties"]["Tags"] == [{"Key": "token", "Value": "(secret)"}]
    targets = json.loads(run("inventory", "targets", "-o", "json").stdout)
    assert next(t for t in targets if t["label"] == "cloud")["config"]["ApiKey"] == "(secret)"

    assert "key k2" in run("api", "secrets", "rotate-key").stdout
    unchanged = json.loads(run("apply", "--simulate", "-o", "json", str(path)).stdout)
    assert unchanged["changes"] == []  # the same secrets plan nothing, under a new key too

    changed = forma({**values, "inline": secret("inline2"), "once": secret("once2")}, key_file)
    path.write_text(json.dumps(changed))
    plan = json.loads(run("apply", "--simulate", "-o", "json", str(path)).stdout)
    assert [(c["label"], c["operation"]) for c in plan["changes"]] == [("bucket", "update")]
    assert [op["path"] for op in plan["changes"][0]["patch"]] == ["/Name"]  # SetOnce: not Description
    assert "(secret)" in json.dumps(plan)
    run("apply", "--simulate", str(path))
    run("apply", "--watch", str(path))
    cloud = cloud_by_kind(tmp_path / "cloud.db")
    assert changed["resources"][1]["properties"]["Name"]["$value"] in json.dumps(cloud["bucket"].properties)
    values = {**values, "inline2": changed["resources"][1]["properties"]["Name"]["$value"]}

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(forma(values, key_file, broken=True)))
    failed = run("apply", "--watch", str(broken), expect=1)
    assert "(secret)" in failed.stdout + failed.stderr  # fake-aws quoted it; the agent masked it
    run("status", "command", "-o", "json", expect=None)
    run("sync", expect=None)
    run("status", "drift", "-o", "json", expect=None)
    run("extract", "--query", "stack:sec", "-o", "json", str(tmp_path / "extracted.json"), expect=None)
    with agent.client() as client:
        commands = client.commands(limit=50)
        api: list[Any] = [client.inventory("resources"), client.inventory("targets"), commands]
        api += [client.command(c["id"]) for c in commands]
    extracted = (tmp_path / "extracted.json").read_text()

    agent.stop()  # the store checkpoints, the log is flushed
    assert_nowhere(values, agent.home, run, json.dumps(api), extracted)
    assert (agent.home / "secrets.key").stat().st_mode & 0o777 == 0o600


def test_an_unresolvable_reference_rejects_the_command_naming_it(
    secret_agent: AgentUnderTest, tmp_path: Path
) -> None:
    document = forma({"inline": "x" * 8, "once": "y" * 8, "target": "z" * 8}, tmp_path / "missing.txt")
    path = tmp_path / "f.json"
    path.write_text(json.dumps(document))
    refused = Cli(secret_agent)("apply", str(path), expect=3)
    assert f"cannot read {tmp_path / 'missing.txt'}" in refused.stderr
