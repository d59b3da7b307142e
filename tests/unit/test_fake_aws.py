"""fake-aws through the public PluginHarness: the cloud rules it enforces; its cloud shared by replicas."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from formae_fake_aws import FakeAWSPlugin
from formae_fake_aws.cloud import SqliteCloud, read_cloud, state_file

from formae.plugin import ErrorCode, ListedResource, Operation, OperationStatus, ProgressResult
from formae.plugin.testing import PluginHarness

pytestmark = pytest.mark.timeout(10)

VPC = "FakeAWS::EC2::VPC"
SUBNET = "FakeAWS::EC2::Subnet"
BUCKET = "FakeAWS::S3::Bucket"


@pytest.fixture
async def aws() -> AsyncIterator[PluginHarness]:
    async with PluginHarness(FakeAWSPlugin()) as harness:
        yield harness


def cloud_of(harness: PluginHarness) -> FakeAWSPlugin:
    assert isinstance(harness.plugin, FakeAWSPlugin)
    return harness.plugin


def failed(result: ProgressResult, code: ErrorCode) -> str:
    assert result.status is OperationStatus.FAILURE, result
    assert result.error_code is code, result
    return result.message


async def a_vpc(aws: PluginHarness, cidr: str = "10.0.0.0/16") -> str:
    result = await aws.create(VPC, {"CidrBlock": cidr})
    assert result.status is OperationStatus.SUCCESS, result
    return result.native_id


async def test_vpc_create_assigns_an_id_and_reads_back(aws: PluginHarness) -> None:
    created = await aws.create(VPC, {"CidrBlock": "10.0.0.0/16", "Tags": [{"Key": "env", "Value": "ü"}]})
    assert created.status is OperationStatus.SUCCESS
    assert created.operation is Operation.CREATE
    assert created.native_id.startswith("vpc-")
    assert created.resource_type == VPC
    assert created.properties == {
        "CidrBlock": "10.0.0.0/16",
        "Tags": [{"Key": "env", "Value": "ü"}],
        "VpcId": created.native_id,
    }
    read = await aws.read(VPC, created.native_id)
    assert (read.status, read.properties) == (OperationStatus.SUCCESS, created.properties)
    assert failed(await aws.read(BUCKET, created.native_id), ErrorCode.NOT_FOUND)  # right id, wrong type


async def test_idempotency_key_dedupes_creates(aws: PluginHarness) -> None:
    first = await aws.create(VPC, {"CidrBlock": "10.0.0.0/16"}, idempotency_key="cmd/1")
    again = await aws.create(VPC, {"CidrBlock": "10.0.0.0/16"}, idempotency_key="cmd/1")
    other = await aws.create(VPC, {"CidrBlock": "10.0.0.0/16"}, idempotency_key="cmd/2")
    assert again.status is OperationStatus.SUCCESS
    assert again.native_id == first.native_id
    assert other.native_id != first.native_id
    assert len((await aws.list(VPC)).resources) == 2


async def test_idempotent_retry_of_an_in_progress_create_returns_the_same_request(aws: PluginHarness) -> None:
    properties = {"BucketName": "slow", "FakeInProgressPolls": 2}
    first = await aws.create(BUCKET, properties, idempotency_key="cmd/1")
    again = await aws.create(BUCKET, properties, idempotency_key="cmd/1")
    assert first.status is again.status is OperationStatus.IN_PROGRESS
    assert again.request_id == first.request_id
    done = await aws.run_to_completion(again)
    assert (done.status, done.native_id) == (OperationStatus.SUCCESS, "slow")
    assert list(cloud_of(aws).cloud.resources) == ["slow"]


async def test_a_retry_that_overtakes_a_slow_create_answers_with_it(aws: PluginHarness) -> None:
    slow = {"BucketName": "raced", "FakeDelayMs": 30}
    first, retry = await asyncio.gather(
        aws.create(BUCKET, slow, idempotency_key="cmd/1"), aws.create(BUCKET, slow, idempotency_key="cmd/1")
    )
    assert first.status is retry.status is OperationStatus.SUCCESS  # not AlreadyExists for the retry
    assert first.native_id == retry.native_id == "raced"
    again = await aws.create(BUCKET, {"BucketName": "raced"}, idempotency_key="cmd/1")
    assert (again.status, again.native_id) == (OperationStatus.SUCCESS, "raced")


async def test_without_a_key_every_create_is_new(aws: PluginHarness) -> None:
    await a_vpc(aws)
    await a_vpc(aws)
    assert len(cloud_of(aws).cloud.of_type(VPC)) == 2


async def test_subnet_requires_an_existing_vpc(aws: PluginHarness) -> None:
    message = failed(
        await aws.create(SUBNET, {"VpcId": "vpc-nope", "CidrBlock": "10.0.1.0/24"}), ErrorCode.INVALID_REQUEST
    )
    assert message == "VpcId 'vpc-nope' does not name an existing VPC"
    failed(await aws.create(SUBNET, {"CidrBlock": "10.0.1.0/24"}), ErrorCode.INVALID_REQUEST)
    await aws.create(BUCKET, {"BucketName": "not-a-vpc"})
    failed(await aws.create(SUBNET, {"VpcId": "not-a-vpc"}), ErrorCode.INVALID_REQUEST)

    vpc_id = await a_vpc(aws)
    subnet = await aws.create(SUBNET, {"VpcId": vpc_id, "CidrBlock": "10.0.1.0/24"})
    assert subnet.status is OperationStatus.SUCCESS
    assert subnet.native_id.startswith("subnet-")
    assert subnet.properties == {"VpcId": vpc_id, "CidrBlock": "10.0.1.0/24", "SubnetId": subnet.native_id}
    assert len(cloud_of(aws).cloud.of_type(SUBNET)) == 1


async def test_bucket_names_are_unique(aws: PluginHarness) -> None:
    first = await aws.create(BUCKET, {"BucketName": "logs"})
    assert (first.status, first.native_id) == (OperationStatus.SUCCESS, "logs")
    message = failed(await aws.create(BUCKET, {"BucketName": "logs", "Other": 1}), ErrorCode.ALREADY_EXISTS)
    assert message == "FakeAWS::S3::Bucket 'logs' already exists"
    assert cloud_of(aws).cloud.resources["logs"].properties == {"BucketName": "logs"}


async def test_bucket_name_is_required(aws: PluginHarness) -> None:
    assert failed(await aws.create(BUCKET, {}), ErrorCode.INVALID_REQUEST) == "BucketName is required"


async def test_unknown_type_is_unsupported(aws: PluginHarness) -> None:
    failed(await aws.create("FakeAWS::EC2::Instance", {}), ErrorCode.UNSUPPORTED_TYPE)


async def test_update_changes_mutable_properties_and_keeps_the_identifier(aws: PluginHarness) -> None:
    vpc_id = await a_vpc(aws)
    prior = (await aws.read(VPC, vpc_id)).properties or {}
    updated = await aws.update(
        VPC, vpc_id, prior, {"CidrBlock": "10.0.0.0/16", "Name": "main", "VpcId": "vpc-evil"}
    )
    assert updated.status is OperationStatus.SUCCESS
    assert updated.properties == {"CidrBlock": "10.0.0.0/16", "Name": "main", "VpcId": vpc_id}
    assert (await aws.read(VPC, vpc_id)).properties == updated.properties


async def test_create_only_change_in_update_is_invalid(aws: PluginHarness) -> None:
    vpc_id = await a_vpc(aws)
    prior = (await aws.read(VPC, vpc_id)).properties or {}
    result = await aws.update(VPC, vpc_id, prior, {"CidrBlock": "192.168.0.0/16"})
    assert failed(result, ErrorCode.INVALID_REQUEST) == "CidrBlock cannot change in place"
    assert (await aws.read(VPC, vpc_id)).properties == prior


async def test_update_of_a_missing_resource_is_not_found(aws: PluginHarness) -> None:
    failed(await aws.update(VPC, "vpc-missing", {}, {"Name": "x"}), ErrorCode.NOT_FOUND)


async def test_vpc_with_subnets_cannot_be_deleted(aws: PluginHarness) -> None:
    vpc_id = await a_vpc(aws)
    subnet = await aws.create(SUBNET, {"VpcId": vpc_id, "CidrBlock": "10.0.1.0/24"})

    message = failed(await aws.delete(VPC, vpc_id), ErrorCode.RESOURCE_CONFLICT)
    assert message == f"{vpc_id} still has subnets: {subnet.native_id}"
    assert ErrorCode.RESOURCE_CONFLICT.recoverable  # the agent retries while the subnet is deleted

    assert (await aws.delete(SUBNET, subnet.native_id)).status is OperationStatus.SUCCESS
    deleted = await aws.delete(VPC, vpc_id)
    assert (deleted.status, deleted.native_id, deleted.properties) == (OperationStatus.SUCCESS, vpc_id, None)
    assert cloud_of(aws).cloud.resources == {}
    failed(await aws.delete(VPC, vpc_id), ErrorCode.NOT_FOUND)


async def test_in_progress_operations_finish_after_their_polls(aws: PluginHarness) -> None:
    started = await aws.create(VPC, {"CidrBlock": "10.0.0.0/16", "FakeInProgressPolls": 3})
    assert started.status is OperationStatus.IN_PROGRESS
    assert started.retry_after == 0.02
    polls = [await aws.status(started.request_id, VPC) for _ in range(3)]
    assert [p.status for p in polls] == [OperationStatus.IN_PROGRESS] * 2 + [OperationStatus.SUCCESS]
    assert polls[-1].native_id == started.native_id
    assert polls[-1].properties is not None
    assert polls[-1].properties["VpcId"] == started.native_id
    again = await aws.status(started.request_id, VPC)  # a finished request keeps its final status
    assert again.status is OperationStatus.SUCCESS
    assert again.native_id == started.native_id
    failed(await aws.status("req-unknown", VPC), ErrorCode.NOT_FOUND)


async def test_injected_failures_then_success(aws: PluginHarness) -> None:
    properties = {"BucketName": "b", "FakeFailWith": "THROTTLING", "FakeFailTimes": 2}
    first = await aws.create(BUCKET, properties, idempotency_key="k")
    assert failed(first, ErrorCode.THROTTLING) == "injected Throttling (1/2)"
    assert first.retry_after == 0.01
    failed(await aws.create(BUCKET, properties, idempotency_key="k"), ErrorCode.THROTTLING)
    assert (await aws.create(BUCKET, properties, idempotency_key="k")).status is OperationStatus.SUCCESS


async def test_list_returns_every_resource_of_a_type(aws: PluginHarness) -> None:
    for name in ("a", "b"):
        await aws.create(BUCKET, {"BucketName": name})
    await a_vpc(aws)
    listed = await aws.list(BUCKET)
    assert sorted(listed.resources, key=lambda r: r.native_id) == [
        ListedResource("a", {"BucketName": "a"}),
        ListedResource("b", {"BucketName": "b"}),
    ]
    assert (await aws.list(SUBNET)).resources == []


async def test_state_file_outlives_the_plugin_process(tmp_path: Path) -> None:
    env = {"FAKE_AWS_STATE_FILE": str(tmp_path / "cloud.db")}
    async with PluginHarness(FakeAWSPlugin.from_env(env)) as before:
        vpc_id = await a_vpc(before)
        await before.create(BUCKET, {"BucketName": "kept"}, idempotency_key="cmd/kept")
        await before.create(BUCKET, {"BucketName": "gone"})
        await before.delete(BUCKET, "gone")
        pending = await before.create(
            BUCKET, {"BucketName": "slow", "FakeInProgressPolls": 3}, idempotency_key="cmd/slow"
        )
        assert (await before.status(pending.request_id, BUCKET)).status is OperationStatus.IN_PROGRESS

    async with PluginHarness(FakeAWSPlugin.from_env(env)) as after:  # the plugin process restarted
        cloud = cloud_of(after).cloud
        assert sorted(cloud.resources) == sorted([vpc_id, "kept", "slow"])
        assert cloud.resources["kept"].properties == {"BucketName": "kept"}
        assert cloud.requests[pending.request_id].polls_left == 2
        again = await after.create(BUCKET, {"BucketName": "kept"}, idempotency_key="cmd/kept")
        assert (again.status, again.native_id) == (OperationStatus.SUCCESS, "kept")
        resumed = await after.create(BUCKET, {"BucketName": "slow"}, idempotency_key="cmd/slow")
        assert resumed.request_id == pending.request_id
        polls = [await after.status(pending.request_id, BUCKET) for _ in range(2)]
        assert [p.status for p in polls] == [OperationStatus.IN_PROGRESS, OperationStatus.SUCCESS]

    async with PluginHarness(FakeAWSPlugin.from_env(env)) as third:
        finished = cloud_of(third).cloud.requests[pending.request_id]
        assert finished.polls_left == 0  # the finishing poll was stored too; the request still answers
        assert len(cloud_of(third).cloud.resources) == 3
    assert read_cloud(tmp_path / "cloud.db")["kept"].properties == {"BucketName": "kept"}


def test_read_cloud_of_a_file_no_replica_made_yet_is_empty(tmp_path: Path) -> None:
    assert read_cloud(tmp_path / "nothing.db") == {}
    assert not (tmp_path / "nothing.db").exists()


def test_an_in_memory_cloud_lives_in_the_process() -> None:
    assert type(FakeAWSPlugin.from_env({"FAKE_AWS_STATE_FILE": ":memory:"}).cloud).__name__ == "MemoryCloud"


def test_by_default_the_cloud_is_a_file_in_the_plugin_state_directory(tmp_path: Path) -> None:
    plugin = FakeAWSPlugin.from_env({"FORMAE_PLUGIN_STATE_DIR": str(tmp_path / "state")})
    try:
        assert type(plugin.cloud).__name__ == "SqliteCloud"
        assert (tmp_path / "state" / "cloud.db").exists()
    finally:
        plugin.cloud.close()
    assert state_file({}) == Path.home() / ".pel" / "formae-plugin" / "fake-aws" / "cloud.db"


# ---------------------------------------------------------------- replicas sharing one cloud


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[tuple[PluginHarness, PluginHarness]]:
    """Two plugin processes of one namespace, as far as the cloud can tell: one SqliteCloud each."""
    path = tmp_path / "cloud.db"
    async with (
        PluginHarness(FakeAWSPlugin(SqliteCloud(path))) as a,
        PluginHarness(FakeAWSPlugin(SqliteCloud(path))) as b,
    ):
        yield a, b


async def test_replicas_see_each_others_resources(replicas: tuple[PluginHarness, PluginHarness]) -> None:
    a, b = replicas
    vpc_id = await a_vpc(a)
    assert (await b.read(VPC, vpc_id)).properties == {"CidrBlock": "10.0.0.0/16", "VpcId": vpc_id}
    subnet = await b.create(SUBNET, {"VpcId": vpc_id, "CidrBlock": "10.0.1.0/24"})  # A's VPC, made on B
    assert subnet.status is OperationStatus.SUCCESS
    failed(await a.delete(VPC, vpc_id), ErrorCode.RESOURCE_CONFLICT)  # B's subnet, seen on A

    await b.create(BUCKET, {"BucketName": "logs"})
    failed(await a.create(BUCKET, {"BucketName": "logs"}), ErrorCode.ALREADY_EXISTS)
    updated = await a.update(BUCKET, "logs", {"BucketName": "logs"}, {"BucketName": "logs", "Tier": 2})
    assert (await b.read(BUCKET, "logs")).properties == updated.properties
    assert [r.native_id for r in (await a.list(SUBNET)).resources] == [subnet.native_id]

    assert (await a.delete(SUBNET, subnet.native_id)).status is OperationStatus.SUCCESS
    failed(await b.delete(SUBNET, subnet.native_id), ErrorCode.NOT_FOUND)
    assert (await b.delete(VPC, vpc_id)).status is OperationStatus.SUCCESS
    assert sorted(cloud_of(a).cloud.resources) == ["logs"]


async def test_one_idempotency_key_on_two_replicas_creates_once(
    replicas: tuple[PluginHarness, PluginHarness],
) -> None:
    a, b = replicas
    first = await a.create(VPC, {"CidrBlock": "10.0.0.0/16"}, idempotency_key="cmd/1")
    again = await b.create(VPC, {"CidrBlock": "10.0.0.0/16"}, idempotency_key="cmd/1")
    assert (again.status, again.native_id) == (OperationStatus.SUCCESS, first.native_id)

    # Both replicas pass the early token check while slow; the cloud's transaction still creates once.
    slow = {"BucketName": "raced", "FakeDelayMs": 50}
    one, other = await asyncio.gather(
        a.create(BUCKET, slow, idempotency_key="cmd/2"), b.create(BUCKET, slow, idempotency_key="cmd/2")
    )
    assert one.status is other.status is OperationStatus.SUCCESS  # not AlreadyExists for the loser
    assert one.native_id == other.native_id == "raced"
    slow_vpc = {"CidrBlock": "10.1.0.0/16", "FakeDelayMs": 50}
    one, other = await asyncio.gather(
        a.create(VPC, slow_vpc, idempotency_key="cmd/3"), b.create(VPC, slow_vpc, idempotency_key="cmd/3")
    )
    assert one.native_id == other.native_id
    assert len(cloud_of(b).cloud.of_type(VPC)) == 2


async def test_request_started_on_one_replica_is_polled_to_its_end_on_the_other(
    replicas: tuple[PluginHarness, PluginHarness],
) -> None:
    a, b = replicas
    properties = {"BucketName": "slow", "FakeInProgressPolls": 3}
    started = await a.create(BUCKET, properties, idempotency_key="cmd/1")
    retried = await b.create(BUCKET, properties, idempotency_key="cmd/1")
    assert retried.status is OperationStatus.IN_PROGRESS
    assert retried.request_id == started.request_id
    polls = [await replica.status(started.request_id, BUCKET) for replica in (b, a, b)]
    assert [p.status for p in polls] == [OperationStatus.IN_PROGRESS] * 2 + [OperationStatus.SUCCESS]
    assert polls[-1].properties == {"BucketName": "slow", "FakeInProgressPolls": 3}
    assert (await a.status(started.request_id, BUCKET)).status is OperationStatus.SUCCESS  # still answers


async def test_injected_failures_count_across_replicas(replicas: tuple[PluginHarness, PluginHarness]) -> None:
    a, b = replicas
    properties = {"BucketName": "b", "FakeFailWith": "Throttling", "FakeFailTimes": 2}
    assert failed(await a.create(BUCKET, properties, idempotency_key="k"), ErrorCode.THROTTLING).endswith(
        "(1/2)"
    )
    assert failed(await b.create(BUCKET, properties, idempotency_key="k"), ErrorCode.THROTTLING).endswith(
        "(2/2)"
    )
    assert (await a.create(BUCKET, properties, idempotency_key="k")).status is OperationStatus.SUCCESS
    assert (await b.create(BUCKET, properties, idempotency_key="k")).native_id == "b"


CREATES_EACH = 200
"""Creates per replica in the concurrency tests: enough for their transactions to interleave."""


async def _create_many(plugin: FakeAWSPlugin, replica: str) -> dict[str, str]:
    """Create ``CREATES_EACH`` VPCs under this replica's own keys and as many under shared keys."""
    harness = PluginHarness(plugin)
    ids = {}
    for i in range(CREATES_EACH):
        for key in (f"{replica}/{i}", f"shared/{i}"):
            result = await harness.create(VPC, {"CidrBlock": "10.0.0.0/16"}, idempotency_key=key)
            assert result.status is OperationStatus.SUCCESS, result
            ids[key] = result.native_id
    return ids


def _assert_created_once_per_key(a: dict[str, str], b: dict[str, str], cloud: Path) -> None:
    shared = [key for key in a if key.startswith("shared/")]
    assert [a[key] for key in shared] == [b[key] for key in shared]
    assert len(set(a.values()) | set(b.values())) == 3 * CREATES_EACH
    assert len(read_cloud(cloud)) == 3 * CREATES_EACH


def test_concurrent_creates_from_two_threads_land_once_per_key(tmp_path: Path) -> None:
    path = tmp_path / "cloud.db"
    SqliteCloud(path).close()  # the schema exists before the race, as when a replica already runs
    start = threading.Barrier(2)
    results: dict[str, dict[str, str]] = {}

    def replica(name: str) -> None:
        plugin = FakeAWSPlugin(SqliteCloud(path))
        start.wait()
        results[name] = asyncio.run(_create_many(plugin, name))
        plugin.cloud.close()

    threads = [threading.Thread(target=replica, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(8)
    _assert_created_once_per_key(results["a"], results["b"], path)


_REPLICA_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from formae_fake_aws import FakeAWSPlugin
    from formae_fake_aws.cloud import SqliteCloud
    from tests.unit.test_fake_aws import _create_many

    plugin = FakeAWSPlugin(SqliteCloud(Path(sys.argv[1])))
    print("ready", flush=True)
    sys.stdin.readline()
    print(json.dumps(asyncio.run(_create_many(plugin, sys.argv[2]))), flush=True)
    """
)


def test_concurrent_creates_from_two_processes_land_once_per_key(tmp_path: Path) -> None:
    path = tmp_path / "cloud.db"
    replicas = [
        subprocess.Popen(
            [sys.executable, "-c", _REPLICA_SCRIPT, str(path), name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[2],
        )
        for name in ("a", "b")
    ]
    for replica in replicas:  # both opened the file (racing to create it): now race the creates
        assert replica.stdout is not None
        assert replica.stdout.readline() == "ready\n"
    for replica in replicas:
        assert replica.stdin is not None
        replica.stdin.write("go\n")
        replica.stdin.flush()
    outputs = [replica.communicate(timeout=8)[0] for replica in replicas]
    assert [replica.returncode for replica in replicas] == [0, 0]
    a, b = (json.loads(output) for output in outputs)
    _assert_created_once_per_key(a, b, path)


async def test_list_pages_in_native_id_order(aws: PluginHarness) -> None:
    for name in ("c", "a", "e", "b", "d"):
        await aws.create(BUCKET, {"BucketName": name})

    first = await aws.list(BUCKET, page_size=2)
    second = await aws.list(BUCKET, page_size=2, page_token=first.next_page_token)
    last = await aws.list(BUCKET, page_size=2, page_token=second.next_page_token)

    pages = [[r.native_id for r in page.resources] for page in (first, second, last)]
    assert pages == [["a", "b"], ["c", "d"], ["e"]]
    assert last.next_page_token == ""
