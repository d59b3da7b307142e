from __future__ import annotations

from dataclasses import replace

import pytest

from formae.model import ResourceKey
from formae.store import Datastore, ResourceDeletion, StoreError, UpdateState, utc_now
from tests.unit.store.store_factories import BUCKET, a_command, a_version, an_update

LOGS = ResourceKey("app", BUCKET, "logs")


async def test_each_write_appends_a_version_and_history_keeps_them_all(store: Datastore) -> None:
    first = await store.put_resource_version(a_version("logs"))
    second = await store.put_resource_version(
        a_version("logs", properties={"BucketName": "logs", "Tags": []})
    )

    assert (first.version, second.version) == (1, 2)
    assert await store.get_resource(LOGS) == second
    assert await store.current_resources() == [second]
    assert await store.resource_history(LOGS) == [first, second]


async def test_deleting_appends_a_tombstone_and_numbering_continues(store: Datastore) -> None:
    live = await store.put_resource_version(a_version("logs"))

    tombstone = await store.delete_resource(ResourceDeletion.of(LOGS, command_id="c1"))
    deleted_again = await store.delete_resource(ResourceDeletion.of(LOGS))
    inventory_after_delete = await store.current_resources()
    recreated = await store.put_resource_version(a_version("logs"))

    assert tombstone is not None
    assert (tombstone.version, tombstone.deleted, tombstone.command_id) == (2, True, "c1")
    assert tombstone.properties == live.properties, "the tombstone remembers what was deleted"
    assert deleted_again is None
    assert inventory_after_delete == []
    assert recreated.version == 3
    assert [r.deleted for r in await store.resource_history(LOGS)] == [False, True, False]


async def test_deleting_a_resource_never_seen_writes_nothing(store: Datastore) -> None:
    assert await store.delete_resource(ResourceDeletion.of(LOGS)) is None
    assert await store.resource_history(LOGS) == []
    assert await store.get_resource(LOGS) is None


async def test_current_resources_filters_by_stack_and_type_glob(store: Datastore) -> None:
    await store.put_resource_version(a_version("logs"))
    await store.put_resource_version(a_version("web", stack="web"))
    await store.put_resource_version(a_version("vpc", type="FakeAWS::EC2::VPC"))

    app = await store.current_resources(stack="app")
    s3 = await store.current_resources(type_pattern="FakeAWS::S3::*")
    lower = await store.current_resources(type_pattern="fakeaws::*")

    assert [r.label for r in app] == ["vpc", "logs"]  # ordered by stack, type, label
    assert sorted(r.label for r in s3) == ["logs", "web"]
    assert lower == [], "type patterns are case-sensitive on both backends"


async def test_record_update_writes_the_update_and_the_version_together(store: Datastore) -> None:
    command = a_command()
    update = an_update(command, "u1", label="logs")
    await store.create_command(command, [update])
    done = replace(update, state=UpdateState.SUCCESS, native_id="arn:aws:s3:::logs", updated_at=utc_now())

    await store.record_update(done, a_version("logs", command_id=command.id))

    version = await store.get_resource(LOGS)
    assert version is not None
    assert (version.version, version.command_id) == (1, command.id)
    assert await store.get_updates(command.id) == [done]


async def test_record_update_can_delete_or_change_nothing(store: Datastore) -> None:
    command = a_command()
    await store.put_resource_version(a_version("logs"))
    delete, read = an_update(command, "u1", label="logs"), an_update(command, "u2")
    await store.create_command(command, [delete, read])

    deleted = replace(delete, state=UpdateState.SUCCESS)
    await store.record_update(deleted, ResourceDeletion.of(LOGS, command.id))
    await store.record_update(replace(read, state=UpdateState.SUCCESS), None)

    assert await store.get_resource(LOGS) is None
    history = await store.resource_history(LOGS)
    assert [(v.version, v.deleted) for v in history] == [(1, False), (2, True)]
    assert [u.state for u in await store.get_updates(command.id)] == [UpdateState.SUCCESS] * 2


async def test_record_update_is_atomic_when_the_version_cannot_be_written(store: Datastore) -> None:
    command = a_command()
    update = an_update(command, "u1", label="logs")
    await store.create_command(command, [update])
    broken = a_version("logs", target=None)  # violates NOT NULL after the update row was written

    with pytest.raises(StoreError):
        await store.record_update(replace(update, state=UpdateState.SUCCESS), broken)

    assert await store.get_updates(command.id) == [update], "the update was rolled back too"
    assert await store.resource_history(LOGS) == []
