"""Out-of-band changes: which commands a reconcile would undo, read without re-reading every forma."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from formae.agent.drift import cloud_drift, out_of_band_changes
from formae.model import Mode, Operation
from formae.store import (
    Command,
    CommandKind,
    Datastore,
    NewResourceVersion,
    Observation,
    ResourceDeletion,
    ResourceUpdateRecord,
    UpdateState,
    VersionOrigin,
    utc_now,
)

pytestmark = pytest.mark.timeout(10)


async def a_command(store: Datastore, mode: Mode, stacks: list[str], changed: str | None) -> Command:
    command = Command.new(CommandKind.APPLY, mode, {"stacks": [{"label": s} for s in stacks]})
    updates = []
    if changed is not None:
        updates.append(
            ResourceUpdateRecord(
                command_id=command.id,
                update_id="u1",
                operation=Operation.CREATE,
                stack=changed,
                type="FakeAWS::S3::Bucket",
                label="b",
                target="t",
                state=UpdateState.SUCCESS,
                updated_at=utc_now(),
            )
        )
    await store.create_command(command, updates)
    if changed is not None:  # the stack has a resource left: there is something to overwrite
        await store.put_resource_version(
            NewResourceVersion(changed, "FakeAWS::S3::Bucket", "b", "t", "b", {}, {}, command.id)
        )
    return command


async def test_each_reconcile_forma_is_read_once_however_many_stacks_are_checked(
    store: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await a_command(store, Mode.RECONCILE, ["a", "b", "c"], None)
    await a_command(store, Mode.RECONCILE, ["x"], None)
    patch = await a_command(store, Mode.PATCH, ["a"], changed="a")
    reads: list[Any] = []
    get_command = store.get_command

    async def counted(*args: Any, **kwargs: Any) -> Command | None:
        reads.append(args)
        return await get_command(*args, **kwargs)

    monkeypatch.setattr(store, "get_command", counted)

    problems = await out_of_band_changes(store, ["a", "b", "c"])

    assert problems == [
        f"stack 'a' was changed out of band since its last reconcile: apply --mode patch {patch.id}"
        " (see formae status command ID)"
    ]
    assert len(reads) == 2  # one per reconcile walked past, not one per reconcile and stack


async def test_the_reconcile_being_planned_is_not_the_last_reconcile_of_its_stacks(store: Datastore) -> None:
    await a_command(store, Mode.RECONCILE, ["a"], None)
    patch = await a_command(store, Mode.PATCH, ["a"], changed="a")
    planning = await a_command(store, Mode.RECONCILE, ["a"], None)  # stored with its claim, then planned

    [problem] = await out_of_band_changes(store, ["a"], planning=planning.id)

    assert f"apply --mode patch {patch.id}" in problem


async def test_a_stack_never_reconciled_has_nothing_to_protect(store: Datastore) -> None:
    await a_command(store, Mode.PATCH, ["a"], changed="a")

    assert await out_of_band_changes(store, ["a"]) == []


async def test_a_stack_whose_resources_were_all_destroyed_is_reapplied_without_force(
    store: Datastore,
) -> None:
    await a_command(store, Mode.RECONCILE, ["a"], None)
    destroy = await a_command(store, Mode.PATCH, ["a"], changed="a")
    assert await out_of_band_changes(store, ["a"]) != []

    await store.delete_resource(ResourceDeletion("a", "FakeAWS::S3::Bucket", "b", destroy.id))

    assert await out_of_band_changes(store, ["a"]) == []


async def test_properties_edited_in_the_cloud_are_named_with_the_commands_to_see_or_keep_them(
    store: Datastore,
) -> None:
    await a_command(store, Mode.RECONCILE, ["a"], None)
    first = await store.put_resource_version(
        NewResourceVersion("a", "FakeAWS::S3::Bucket", "b", "t", "b", {"Tags": 1}, {"Tags": 1})
    )
    edited = replace(first, properties={"Tags": 2}, origin=VersionOrigin.SYNC)
    assert await store.observe([Observation(first.version, edited)]) == [True]

    [problem] = await out_of_band_changes(store, ["a"])

    assert "stack 'a' was changed in the cloud: FakeAWS::S3::Bucket b" in problem
    assert "formae status drift --query stack:a" in problem
    [drift] = await cloud_drift(store)
    assert drift.patch == [{"op": "replace", "path": "/Tags", "value": 2}]
    assert (drift.before, drift.deleted) == ({"Tags": 1}, False)
