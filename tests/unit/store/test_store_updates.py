from __future__ import annotations

from dataclasses import replace

from store_factories import a_command, an_update

from formae.store import Datastore, Operation, UpdateState, utc_now


async def test_updates_are_stored_with_their_command(store: Datastore) -> None:
    command = a_command()
    first = an_update(command, "u1")
    second = an_update(command, "u2", depends_on=["u1"], desired_properties={"BucketName": "b"})

    await store.create_command(command, [first, second])

    assert await store.get_updates(command.id) == [first, second]


async def test_save_update_replaces_by_command_and_update_id(store: Datastore) -> None:
    command = a_command()
    update = an_update(command, "u1")
    await store.create_command(command, [update])

    waiting = replace(
        update,
        state=UpdateState.IN_PROGRESS,
        attempts=1,
        request_id="req-42",
        progress={"status": "InProgress", "requestId": "req-42"},
        updated_at=utc_now(),
    )
    await store.save_update(waiting)
    failed = replace(
        waiting,
        operation=Operation.UPDATE,
        state=UpdateState.FAILED,
        attempts=3,
        prior_properties={"BucketName": "old"},
        patch=[{"op": "replace", "path": "/BucketName", "value": "new"}],
        error_code="Throttling",
        error="rate exceeded",
        updated_at=utc_now(),
    )
    await store.save_update(failed)

    assert await store.get_updates(command.id) == [failed]


async def test_save_update_inserts_an_update_not_planned_at_creation(store: Datastore) -> None:
    command = a_command()
    await store.create_command(command, [an_update(command, "u1")])

    await store.save_update(an_update(command, "u2", operation=Operation.READ))

    assert [u.update_id for u in await store.get_updates(command.id)] == ["u1", "u2"]
