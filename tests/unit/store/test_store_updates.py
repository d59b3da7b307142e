from __future__ import annotations

from dataclasses import replace

from formae.model import Operation
from formae.store import Datastore, PluginProgress, UpdateState, utc_now
from tests.unit.store.store_factories import a_command, an_update


async def test_updates_are_stored_with_their_command(store: Datastore) -> None:
    command = a_command()
    first = an_update(command, "u1")
    second = an_update(command, "u2", depends_on=["u1"], desired_properties={"BucketName": "b"})

    await store.create_command(command, [first, second])

    assert await store.get_updates(command.id) == [first, second]


async def test_save_progress_writes_what_a_step_changes_and_keeps_the_plan(store: Datastore) -> None:
    command = a_command()
    update = an_update(command, "u1")
    await store.create_command(command, [update])

    waiting = replace(
        update,
        state=UpdateState.IN_PROGRESS,
        attempts=1,
        request_id="req-42",
        progress=PluginProgress("CREATE", "IN_PROGRESS", request_id="req-42", retry_after=0.5),
        updated_at=utc_now(),
    )
    await store.save_progress(waiting)
    assert await store.get_updates(command.id) == [waiting]
    failed = replace(
        waiting,
        state=UpdateState.FAILED,
        attempts=3,
        native_id="arn:aws:s3:::b",
        error_code="Throttling",
        error="rate exceeded",
        updated_at=utc_now(),
    )
    await store.save_progress(
        replace(failed, operation=Operation.UPDATE, prior_properties={"BucketName": "old"})
    )

    assert await store.get_updates(command.id) == [failed], "the plan is fixed at creation"


async def test_since_lists_only_the_updates_changed_at_or_after_it(store: Datastore) -> None:
    from datetime import timedelta

    command = a_command()
    now = utc_now()
    old, edge, new = (an_update(command, f"u{i}", updated_at=now + timedelta(seconds=i)) for i in range(3))
    await store.create_command(command, [old, edge, new])

    assert await store.get_updates(command.id, since=edge.updated_at) == [edge, new]
    assert await store.get_updates(command.id, since=now + timedelta(seconds=9)) == []
    assert await store.get_updates(command.id, since=edge.updated_at, limit=1) == [edge]
