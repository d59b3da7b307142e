"""End to end: a real agent spawns the aws plugin, which talks to moto's server over HTTP.

examples/aws.pkl is applied, changed (in place and by replacement), drifted with boto3 (an edit
and a deletion, which a sync finds and a forced reconcile undoes), destroyed; at each step the
test counts what exists in moto against the forma: nothing lost, nothing duplicated, nothing
left behind. Then the agent's retries and the plugin's rate limit are seen through a proxy that
throttles some calls the way AWS does, and the agent polling a DynamoDB table's status through
one that makes tables take a while, as AWS does.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from aws_testing import MotoServer, SlowTablesProxy, ThrottlingProxy

from formae.testing import AgentProcess, wait_until

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[3]
STACK = "aws-example"


def example_forma(endpoint: str) -> dict[str, Any]:
    pkl = shutil.which("pkl")
    if pkl is None:
        if os.environ.get("CI"):
            raise AssertionError("pkl is required on CI (.ci/install-pkl)")
        pytest.skip("needs the pkl CLI")
    rendered = subprocess.run(
        [pkl, "eval", "-f", "json", str(REPO / "examples" / "aws.pkl")],
        env={**os.environ, "AWS_ENDPOINT_URL": endpoint},
        capture_output=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(rendered.stdout))


def resource(forma: dict[str, Any], label: str) -> dict[str, Any]:
    return next(r for r in forma["resources"] if r["label"] == label)


def succeeded(agent: AgentProcess, command: dict[str, Any]) -> dict[str, Any]:
    assert command["state"] == "Success", json.dumps(command, indent=1)[-3000:]
    return command


def sync(agent: AgentProcess) -> dict[str, Any]:
    """A sync of the example's stack, once it ended."""
    with agent.client() as client:
        run: dict[str, Any] = client.request("POST", "/sync", json={"query": f"stack:{STACK}"})
        while run["state"] not in ("Success", "Failed"):
            run = client.request("GET", f"/sync/{run['id']}", params={"wait": 30})
    return run


def drift(agent: AgentProcess) -> list[dict[str, Any]]:
    with agent.client() as client:
        found: list[dict[str, Any]] = client.request("GET", "/drift", params={"query": f"stack:{STACK}"})
    return found


def cloud(aws: MotoServer) -> dict[str, Any]:
    """What exists in moto that the example could have made (moto's default VPC left out)."""
    ec2, iam = aws.client("ec2"), aws.client("iam")
    vpcs = [v for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]]
    vpc_ids = [v["VpcId"] for v in vpcs]
    in_vpcs = [{"Name": "vpc-id", "Values": vpc_ids}] if vpc_ids else None
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    return {
        "vpcs": vpc_ids,
        "subnets": sorted(s["CidrBlock"] for s in ec2.describe_subnets(Filters=in_vpcs)["Subnets"])
        if in_vpcs
        else [],
        "groups": [
            g["GroupId"]
            for g in ec2.describe_security_groups(Filters=in_vpcs)["SecurityGroups"]
            if g["GroupName"] != "default"
        ]
        if in_vpcs
        else [],
        "route_tables": [
            t["RouteTableId"]
            for t in ec2.describe_route_tables(Filters=in_vpcs)["RouteTables"]
            if not any(a.get("Main") for a in t.get("Associations", []))
        ]
        if in_vpcs
        else [],
        "buckets": [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]],
        "topics": [t["TopicArn"] for t in aws.client("sns").list_topics()["Topics"]],
        "subscriptions": [
            s["SubscriptionArn"] for s in aws.client("sns").list_subscriptions()["Subscriptions"]
        ],
        "queues": aws.client("sqs").list_queues().get("QueueUrls", []),
        "tables": aws.client("dynamodb").list_tables()["TableNames"],
        "roles": roles,
        "policies": [p for r in roles for p in iam.list_role_policies(RoleName=r)["PolicyNames"]],
        "functions": [f["FunctionName"] for f in aws.client("lambda").list_functions()["Functions"]],
    }


def test_the_example_is_applied_changed_and_destroyed(aws: MotoServer, start_agent: Any) -> None:
    agent = start_agent()
    forma = example_forma(aws.url)

    succeeded(agent, agent.apply_and_wait(forma, timeout=90))
    made = cloud(aws)
    assert {name: len(found) for name, found in made.items()} == {
        "vpcs": 1,
        "subnets": 2,
        "groups": 1,
        "route_tables": 1,
        "buckets": 1,
        "topics": 1,
        "subscriptions": 1,
        "queues": 1,
        "tables": 1,
        "roles": 1,
        "policies": 1,
        "functions": 1,
    }
    assert made["subnets"] == ["10.20.1.0/24", "10.20.2.0/24"]
    with agent.client() as client:
        inventory = client.inventory("resources", f"stack:{STACK}")
    assert len(inventory) == len(forma["resources"])

    changed = copy.deepcopy(forma)
    resource(changed, "queue")["properties"]["VisibilityTimeout"] = 120  # in place
    resource(changed, "function")["properties"]["Timeout"] = 20  # in place
    resource(changed, "subnet-us-east-1b")["properties"]["CidrBlock"] = (
        "10.20.3.0/24"  # create-only: replaced
    )
    succeeded(agent, agent.apply_and_wait(changed, timeout=90))
    after = cloud(aws)
    assert after["queues"] == made["queues"], "an in-place update keeps the queue"
    assert after["subnets"] == ["10.20.1.0/24", "10.20.3.0/24"], "the subnet was replaced, not duplicated"
    sqs = aws.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=after["queues"][0], AttributeNames=["VisibilityTimeout"])
    assert attributes["Attributes"]["VisibilityTimeout"] == "120"
    function = aws.client("lambda").get_function_configuration(FunctionName=after["functions"][0])
    assert function["Timeout"] == 20

    # out of band, with boto3: an attribute edited, a resource deleted; sync finds both, nothing else
    sqs.set_queue_attributes(QueueUrl=after["queues"][0], Attributes={"VisibilityTimeout": "5"})
    aws.client("ec2").delete_route_table(RouteTableId=after["route_tables"][0])
    run = sync(agent)
    assert run["state"] == "Success", run
    total = len(forma["resources"])
    counts = run["counts"]
    assert (counts["changed"], counts["gone"], counts["unchanged"]) == (1, 1, total - 2), run
    found = {d["label"]: d for d in drift(agent)}
    assert found["routes"]["change"] == "deleted"
    assert found["queue"]["patch"] == [{"op": "replace", "path": "/VisibilityTimeout", "value": 5}]
    assert set(found) == {"routes", "queue"}

    with agent.client() as client:  # --force: the forma wins over the edits made in the cloud
        forced = client.apply(changed, "reconcile", False, True, "test")
    succeeded(agent, agent.wait_command(forced["command_id"], timeout=90))
    restored = cloud(aws)
    assert len(restored["route_tables"]) == 1, "the deleted route table was made again"
    attributes = sqs.get_queue_attributes(QueueUrl=after["queues"][0], AttributeNames=["VisibilityTimeout"])
    assert attributes["Attributes"]["VisibilityTimeout"] == "120", "the edit was put back"
    assert sync(agent)["counts"]["unchanged"] == total
    assert drift(agent) == []

    with agent.client() as client:
        destroy = client.destroy(None, f"stack:{STACK}", False, "test")
    succeeded(agent, agent.wait_command(destroy["command_id"], timeout=90))
    assert all(not found for found in cloud(aws).values()), cloud(aws)


def test_throttled_calls_are_retried_after_the_services_delay_within_the_rate_limit(
    aws: MotoServer, start_agent: Any
) -> None:
    groups = 8
    rate = 4.0
    with ThrottlingProxy(aws, {"CreateVpc": 2, "CreateLogGroup": 3}, retry_after=0.3) as proxy:
        agent = start_agent(AWS_PLUGIN_RATE_LIMIT=str(rate))
        forma = {
            "stacks": [{"label": "storm"}],
            "targets": [
                {
                    "label": "aws",
                    "namespace": "AWS",
                    "config": {"region": "us-east-1", "endpoint_url": proxy.url},
                }
            ],
            "resources": [
                {
                    "label": "vpc",
                    "type": "AWS::EC2::VPC",
                    "stack": "storm",
                    "target": "aws",
                    "properties": {"CidrBlock": "10.9.0.0/16"},
                },
                *(
                    {
                        "label": f"logs-{index}",
                        "type": "AWS::Logs::LogGroup",
                        "stack": "storm",
                        "target": "aws",
                        "properties": {"LogGroupName": f"/storm/{index}"},
                    }
                    for index in range(groups)
                ),
            ],
        }
        started = time.monotonic()
        succeeded(agent, agent.apply_and_wait(forma, timeout=90))
        elapsed = time.monotonic() - started

        created = proxy.calls_of("CreateLogGroup")
        assert sum(call.throttled for call in created) == 3
        assert len(created) == groups + 3, "each throttled create was sent again, and only those"
        vpc_calls = proxy.calls_of("CreateVpc")
        assert [call.throttled for call in vpc_calls] == [True, True, False]
        assert vpc_calls[1].at - vpc_calls[0].at >= 0.3, "the agent waited the service's Retry-After"

    names = sorted(
        g["logGroupName"]
        for g in aws.client("logs").describe_log_groups(logGroupNamePrefix="/storm/")["logGroups"]
    )
    assert names == [f"/storm/{index}" for index in range(groups)]
    assert len([v for v in aws.client("ec2").describe_vpcs()["Vpcs"] if not v["IsDefault"]]) == 1
    operations = 1 + groups + 2 + 3  # every create, and every retry, takes a token
    burst = rate
    assert elapsed >= (operations - burst) / rate * 0.9, (
        f"{operations} operations in {elapsed:.2f}s at {rate}/s"
    )


def test_resources_made_outside_formae_are_discovered_extracted_and_adopted(
    aws: MotoServer, start_agent: Any
) -> None:
    agent = start_agent()
    target = {"label": "aws", "namespace": "AWS", "config": {"region": "us-east-1", "endpoint_url": aws.url}}
    managed = {
        "stacks": [{"label": "apps"}],
        "targets": [target],
        "resources": [
            {"label": "jobs", "type": "AWS::SQS::Queue", "stack": "apps", "target": "aws", "properties": {}}
        ],
    }
    succeeded(agent, agent.apply_and_wait(managed, timeout=60))
    sqs = aws.client("sqs")
    by_hand = sqs.create_queue(QueueName="by-hand", Attributes={"VisibilityTimeout": "45"})["QueueUrl"]

    with agent.client() as client:
        run = client.request("POST", "/discover", json={"target": "aws", "type": "AWS::SQS::Queue"})
        while run["state"] not in ("Success", "Failed"):
            run = client.request("GET", f"/discover/{run['id']}", params={"wait": 30})
        assert run["state"] == "Success", run
        unmanaged = client.inventory("resources", "managed:false")
        assert [r["native_id"] for r in unmanaged] == [by_hand], "the managed queue is not listed twice"
        assert unmanaged[0]["properties"]["VisibilityTimeout"] == 45
        forma = client.request("GET", "/extract", params={"query": "managed:false", "stack": "adopted"})
        plan = client.apply(forma, "reconcile", True, False, "extracted")
    assert plan["summary"]["create"] == 0
    assert plan["summary"]["adopt"] == 1
    succeeded(agent, agent.apply_and_wait(forma, timeout=60))
    assert len(sqs.list_queues()["QueueUrls"]) == 2, "adopting created nothing"
    with agent.client() as client:
        assert client.inventory("resources", "managed:false") == []
        assert {r["stack"] for r in client.inventory("resources", "type:AWS::SQS::Queue")} == {
            "apps",
            "adopted",
        }


def test_creates_whose_answer_was_lost_are_retried_and_find_what_the_first_attempt_made(
    aws: MotoServer, start_agent: Any
) -> None:
    """AWS made the resource, the answer never came back: the retry (same idempotency key) adopts it."""
    lose = {
        "CreateVpc": 1,
        "CreateSubnet": 1,
        "CreateLogGroup": 1,
        "CreateQueue": 1,
        "CreateTable": 1,
        "CreateRole": 1,
    }
    with ThrottlingProxy(aws, {}, lose=lose) as proxy:
        agent = start_agent()
        target = {
            "label": "aws",
            "namespace": "AWS",
            "config": {"region": "us-east-1", "endpoint_url": proxy.url},
        }
        vpc_id = {
            "$res": True,
            "$label": "vpc",
            "$type": "AWS::EC2::VPC",
            "$stack": "lost",
            "$property": "VpcId",
        }
        resources = {
            "vpc": ("AWS::EC2::VPC", {"CidrBlock": "10.8.0.0/16"}),
            "subnet": ("AWS::EC2::Subnet", {"CidrBlock": "10.8.1.0/24", "VpcId": vpc_id}),
            "logs": ("AWS::Logs::LogGroup", {}),
            "queue": ("AWS::SQS::Queue", {}),
            "table": (
                "AWS::DynamoDB::Table",
                {
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                    "BillingMode": "PAY_PER_REQUEST",
                },
            ),
            "role": (
                "AWS::IAM::Role",
                {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}},
            ),
        }
        forma = {
            "stacks": [{"label": "lost"}],
            "targets": [target],
            "resources": [
                {"label": label, "type": type, "stack": "lost", "target": "aws", "properties": properties}
                for label, (type, properties) in resources.items()
            ],
        }
        succeeded(agent, agent.apply_and_wait(forma, timeout=90))
        assert proxy.to_lose == dict.fromkeys(lose, 0), "every first answer was lost"

    made = cloud(aws)
    counts = {name: len(made[name]) for name in ("vpcs", "subnets", "queues", "tables", "roles")}
    assert counts == dict.fromkeys(counts, 1), made
    groups = aws.client("logs").describe_log_groups()["logGroups"]
    assert len(groups) == 1
    with agent.client() as client:
        managed = {r["label"]: r["native_id"] for r in client.inventory("resources", "stack:lost")}
    assert managed["vpc"] == made["vpcs"][0]
    assert (
        managed["queue"].rsplit("/", 1)[1] == made["queues"][0].rsplit("/", 1)[1]
    )  # moto's URL names its host
    assert managed["logs"] == groups[0]["logGroupName"]


def table_forma(endpoint: str) -> dict[str, Any]:
    return {
        "stacks": [{"label": "slow"}],
        "targets": [
            {"label": "aws", "namespace": "AWS", "config": {"region": "us-east-1", "endpoint_url": endpoint}}
        ],
        "resources": [
            {
                "label": "orders",
                "type": "AWS::DynamoDB::Table",
                "stack": "slow",
                "target": "aws",
                "properties": {
                    "TableName": "orders",
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                    "BillingMode": "PAY_PER_REQUEST",
                },
            }
        ],
    }


def table_update(agent: AgentProcess, command_id: str) -> dict[str, Any]:
    with agent.client() as client:
        update: dict[str, Any] = client.command(command_id)["updates"][0]
    return update


def test_a_table_aws_takes_a_while_to_make_and_drop_is_polled_until_it_is_there_or_gone(
    aws: MotoServer, start_agent: Any
) -> None:
    with SlowTablesProxy(aws, creating=3, deleting=2) as proxy:
        agent = start_agent()
        command_id = agent.apply(table_forma(proxy.url))["command_id"]
        polling = wait_until(
            lambda: (u := table_update(agent, command_id))["state"] == "InProgress" and u, 30, "polling"
        )
        assert polling["request_id"].startswith("CREATE|AWS::DynamoDB::Table|orders")
        created = succeeded(agent, agent.wait_command(command_id, timeout=60))
        assert [u["attempts"] for u in created["updates"]] == [1], "polls are not attempts"
        assert [status for _, status in proxy.served][:4] == ["CREATING"] * 3 + ["ACTIVE"]
        with agent.client() as client:
            [table] = client.inventory("resources", "stack:slow")
        assert table["properties"]["Arn"].endswith(":table/orders"), "the properties read once ACTIVE"

        proxy.served.clear()
        with agent.client() as client:
            destroy = client.destroy(None, "stack:slow", False, "test")
        succeeded(agent, agent.wait_command(destroy["command_id"], timeout=60))
        assert [status for _, status in proxy.served] == ["DELETING", "DELETING", "NotFound"]
    assert aws.client("dynamodb").list_tables()["TableNames"] == []
