"""Discovery against fake-aws in process: pages, unmanaged entries, what it never takes."""

from __future__ import annotations

import asyncio

import pytest
from formae_fake_aws import FakeAWSPlugin

from formae.agent.conflicts import Claims
from formae.agent.discovery import Discovery
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import PluginRegistry
from formae.store import (
    Datastore,
    NewResourceVersion,
    TargetRecord,
)
from formae.wire.types import CreateRequest, TargetInfo
from tests.unit.memory_stream import connected

pytestmark = pytest.mark.timeout(20)
BUCKET = "FakeAWS::S3::Bucket"
TARGET = TargetInfo("local", "FakeAWS")


@pytest.fixture
async def store(store: Datastore) -> Datastore:
    """The shared SQLite store, with the target discovery lists."""
    await store.upsert_target(TargetRecord("local", "FakeAWS"))
    return store


async def test_paged_lists_become_unmanaged_resources_and_managed_ones_are_left_alone(
    store: Datastore,
) -> None:
    plugin = FakeAWSPlugin()
    for name in ("a", "b", "c", "d", "e"):
        await plugin.create(CreateRequest(BUCKET, name, {"BucketName": name}, TARGET))
    await store.put_resource_version(
        NewResourceVersion("net", BUCKET, "mine", "local", "c", {"BucketName": "c"}, {"BucketName": "c"})
    )
    limiter = RateLimiter()
    registry = PluginRegistry(limiter)
    discovery = Discovery(store, registry, limiter, Claims(), page_size=2)

    async with connected(plugin, registry), asyncio.TaskGroup() as agent:
        serving = agent.create_task(discovery.run())
        run = discovery.start()
        await run.finished.wait()
        plugin.cloud.remove("e", None)  # deleted in the cloud: the next run forgets it
        again = discovery.start(resource_type=BUCKET)
        await again.finished.wait()
        serving.cancel()

    assert run.state == "Success", run.errors
    assert run.counts["listed"] == 5
    assert run.counts["new"] == 4
    assert again.counts["removed"] == 1
    unmanaged = {r.label: r for r in await store.current_resources() if not r.managed}
    assert set(unmanaged) == {"a", "b", "d"}
    assert unmanaged["a"].stack == "$unmanaged"
    assert unmanaged["a"].properties == {"BucketName": "a"}
