"""The synchronizer's pure parts: what a sync writes as the new desire, and its run's state machine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from formae_fake_aws import FakeAWSPlugin
from formae_fake_aws.cloud import CloudResource

from formae.agent.conflicts import Claimant, Claims, Scope
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import PluginRegistry
from formae.agent.run_queue import RUN_TRANSITIONS, RunState
from formae.agent.synchronizer import (
    Outcome,
    Synchronizer,
    SyncRun,
    synced_desired,
)
from formae.model import ResourceKey
from formae.store import (
    Datastore,
    NewResourceVersion,
    Observation,
    ResourceRecord,
    TargetRecord,
    VersionOrigin,
    open_store,
    sqlite_url,
)
from formae.wire.types import CreateRequest, TargetInfo
from tests.unit.memory_stream import connected

pytestmark = pytest.mark.timeout(5)

BUCKET = "FakeAWS::S3::Bucket"
TARGET = TargetInfo("local", "FakeAWS")
VPC_REF = {"$res": True, "$label": "vpc", "$type": "FakeAWS::EC2::VPC", "$stack": "net", "$property": "VpcId"}


def test_a_value_edited_in_the_cloud_becomes_the_desire_so_the_planner_puts_the_forma_back() -> None:
    desired = {"BucketName": "b", "Tags": {"env": "dev"}}
    before = {"BucketName": "b", "Tags": {"env": "dev"}}
    after = {"BucketName": "b", "Tags": {"env": "prod"}, "Extra": 1}

    assert synced_desired(desired, before, after, frozenset()) == {
        "BucketName": "b",
        "Tags": {"env": "prod"},
        "Extra": 1,
    }


def test_a_removed_value_leaves_the_desire_references_and_read_only_values_never_change() -> None:
    desired = {"CidrBlock": "10.0.1.0/24", "VpcId": VPC_REF, "Name": "n"}
    before = {"CidrBlock": "10.0.1.0/24", "VpcId": "vpc-1", "SubnetId": "subnet-1", "Name": "n"}
    after = {"CidrBlock": "10.0.1.0/24", "VpcId": "vpc-2", "SubnetId": "subnet-9"}

    assert synced_desired(desired, before, after, frozenset({"SubnetId"})) == {
        "CidrBlock": "10.0.1.0/24",
        "VpcId": VPC_REF,
    }


def test_a_run_ends_once_and_counts_its_outcomes() -> None:
    run = SyncRun("r1", "stack:net")
    run.move(RunState.RUNNING)
    run.count(Outcome.FAILED, "net/T/b: Throttling: slow down")
    run.move(RunState.FAILED)

    assert run.finished.is_set()
    assert run.counts[Outcome.FAILED] == 1
    assert run.errors == ["net/T/b: Throttling: slow down"]
    assert RUN_TRANSITIONS[RunState.FAILED] == frozenset()
    with pytest.raises(RuntimeError):
        run.move(RunState.SUCCESS)


# ---------------------------------------------------------------- a run, against fake-aws in process


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Datastore]:
    opened = await open_store(sqlite_url(tmp_path / "formae.db"))
    await opened.upsert_target(TargetRecord("local", "FakeAWS"))
    yield opened
    await opened.close()


async def _managed(store: Datastore, plugin: FakeAWSPlugin, name: str) -> ResourceRecord:
    await plugin.create(CreateRequest(BUCKET, name, {"BucketName": name}, TARGET))
    return await store.put_resource_version(
        NewResourceVersion("net", BUCKET, name, "local", name, {"BucketName": name}, {"BucketName": name})
    )


@pytest.mark.timeout(20)
async def test_a_run_records_edits_and_deletions_and_skips_what_a_claim_covers(store: Datastore) -> None:
    plugin = FakeAWSPlugin()
    for name in ("same", "edited", "deleted", "claimed"):
        await _managed(store, plugin, name)
    plugin.cloud.update(CloudResource(BUCKET, "edited", {"BucketName": "edited", "Tags": {"a": 1}}), None)
    plugin.cloud.update(CloudResource(BUCKET, "claimed", {"BucketName": "claimed", "Tags": {"b": 2}}), None)
    plugin.cloud.remove("deleted", None)
    limiter = RateLimiter()
    registry = PluginRegistry(limiter)
    claims = Claims()
    synchronizer = Synchronizer(store, registry, limiter, claims)
    held = claims.try_claim(
        Claimant.command("c1"), Scope.of(resources=[ResourceKey("net", BUCKET, "claimed")])
    )

    async with connected(plugin, registry), asyncio.TaskGroup() as agent:
        serving = agent.create_task(synchronizer.run())
        run = await synchronizer.sync("stack:net")
        serving.cancel()
    held.release()

    assert run.state is RunState.SUCCESS
    assert {o: n for o, n in run.counts.items() if n} == {
        Outcome.UNCHANGED: 1, Outcome.CHANGED: 1, Outcome.GONE: 1, Outcome.SKIPPED: 1,
    }  # fmt: skip
    current = {r.label: r for r in await store.current_resources()}
    assert set(current) == {"same", "edited", "claimed"}
    assert current["edited"].origin is VersionOrigin.SYNC
    assert current["edited"].desired_properties == {"BucketName": "edited", "Tags": {"a": 1}}
    assert current["claimed"].origin is VersionOrigin.COMMAND  # a command was changing it
    [deleted] = [d for d in await store.drifted() if d.current.deleted]
    assert deleted.current.label == "deleted"


@pytest.mark.timeout(20)
async def test_what_was_read_is_not_written_over_a_version_a_command_wrote_meanwhile(
    store: Datastore,
) -> None:
    first = await store.put_resource_version(
        NewResourceVersion("net", BUCKET, "b", "local", "b", {"BucketName": "b"}, {"BucketName": "b"})
    )
    await store.put_resource_version(  # the command's version lands between the read and the write
        NewResourceVersion("net", BUCKET, "b", "local", "b", {"BucketName": "b", "V": 2}, {"BucketName": "b"})
    )
    stale = replace(first, properties={"BucketName": "b", "Tags": 1}, origin=VersionOrigin.SYNC)

    assert await store.observe([Observation(first.version, stale)]) == [False]
    [current] = await store.current_resources()
    assert (current.version, current.origin) == (2, VersionOrigin.COMMAND)
