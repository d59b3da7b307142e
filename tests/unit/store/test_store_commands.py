from __future__ import annotations

import pytest

from formae.store import CommandState, Datastore, StoreError
from tests.unit.store.store_factories import a_command, an_update

ANY_STATE = tuple(CommandState)


async def test_a_command_round_trips_with_its_forma(store: Datastore) -> None:
    forma = {"stacks": [{"label": "app"}], "note": "naïve ☃", "ratio": 0.1, "none": None, "n": 2**40}
    command = a_command(**forma)

    await store.create_command(command)

    assert await store.get_command(command.id) == command


async def test_command_lifecycle_moves_state_and_keeps_the_message(store: Datastore) -> None:
    command = a_command()
    await store.create_command(command)

    running = await store.move_command(command.id, CommandState.IN_PROGRESS, None, ANY_STATE)
    done = await store.move_command(command.id, CommandState.FAILED, "bucket-1: AccessDenied", ANY_STATE)
    again = await store.move_command(command.id, CommandState.FAILED, None, ANY_STATE)

    assert running is not None
    assert done is not None
    assert again is not None
    assert running.state is CommandState.IN_PROGRESS
    assert running.updated_at >= command.created_at
    assert (done.state, done.message) == (CommandState.FAILED, "bucket-1: AccessDenied")
    assert again.message == "bucket-1: AccessDenied"
    assert await store.get_command(command.id, with_forma=False) == again
    assert again.forma is None  # a state change does not read the (possibly huge) forma back


async def test_unknown_commands(store: Datastore) -> None:
    assert await store.get_command("01NOSUCHCOMMAND") is None
    assert await store.move_command("01NOSUCHCOMMAND", CommandState.CANCELED, None, ANY_STATE) is None


async def test_list_commands_is_newest_first_limited_and_filtered(store: Datastore) -> None:
    commands = [a_command(n=i) for i in range(5)]
    for command in commands:
        await store.create_command(command)
    await store.move_command(commands[1].id, CommandState.SUCCESS, None, ANY_STATE)
    await store.move_command(commands[3].id, CommandState.FAILED, None, ANY_STATE)

    newest = await store.list_commands(limit=3)
    finished = await store.list_commands(states={CommandState.SUCCESS, CommandState.FAILED})

    by_age = sorted(commands, key=lambda c: c.id)
    assert [c.id for c in newest] == [c.id for c in reversed(by_age)][:3]
    assert {c.id for c in finished} == {commands[1].id, commands[3].id}
    assert await store.list_commands(states=[]) == []


async def test_incomplete_commands_are_the_ones_to_resume(store: Datastore) -> None:
    states = list(CommandState)
    commands = [a_command(state=str(state)) for state in states]
    for command, state in zip(commands, states, strict=True):
        await store.create_command(command)
        if state is not CommandState.PENDING:
            await store.move_command(command.id, state, None, ANY_STATE)

    incomplete = await store.list_incomplete_commands()

    assert {c.state for c in incomplete} == {
        CommandState.QUEUED,
        CommandState.PENDING,
        CommandState.IN_PROGRESS,
        CommandState.CANCELING,
    }
    assert [c.id for c in incomplete] == sorted(c.id for c in incomplete), "oldest first"


async def test_create_command_is_all_or_nothing(store: Datastore) -> None:
    command = a_command()
    duplicate_updates = [an_update(command, "u1"), an_update(command, "u1")]

    with pytest.raises(StoreError):
        await store.create_command(command, duplicate_updates)

    assert await store.get_command(command.id) is None
    assert await store.get_updates(command.id) == []


async def test_a_command_id_is_never_reused(store: Datastore) -> None:
    command = a_command()
    await store.create_command(command)

    with pytest.raises(StoreError):
        await store.create_command(command)
