"""CommandRunner: a command's stored state follows what really happened, whatever a cancel races with.

These run an empty forma (no resources, so no plugin is needed) over a real SQLite store; a few
store calls are held at a gate so that a cancel lands exactly where a race would put it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest

from formae.agent.commands import CommandRunner
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import PluginRegistry
from formae.model import Mode, Operation
from formae.store import (
    Command,
    CommandKind,
    CommandState,
    Datastore,
    ResourceUpdateRecord,
    UpdateState,
    utc_now,
)
from formae.store.errors import StoreError, StoreUnavailable

pytestmark = pytest.mark.timeout(10)

BUCKET = "FakeAWS::S3::Bucket"


@pytest.fixture
def runner(store: Datastore) -> CommandRunner:
    limiter = RateLimiter()
    return CommandRunner(store, PluginRegistry(limiter), limiter)


@pytest.fixture
async def running(runner: CommandRunner) -> AsyncIterator[CommandRunner]:
    task = asyncio.create_task(runner.run())
    yield runner
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class Gate:
    """Holds a store call after (or before) the real one until ``open`` is set."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.open = asyncio.Event()

    def hold(self, call: Callable[..., Awaitable[Any]], *, after: bool) -> Callable[..., Awaitable[Any]]:
        async def held(*args: Any, **kwargs: Any) -> Any:
            if not after:
                self.entered.set()
                await self.open.wait()
            result = await call(*args, **kwargs)
            if after:
                self.entered.set()
                await self.open.wait()
            return result

        return held


async def submit(runner: CommandRunner) -> str:
    submission = await runner.submit_apply({}, Mode.PATCH)
    assert submission.command is not None
    return submission.command.id


async def stored_state(store: Datastore, command_id: str) -> CommandState:
    command = await store.get_command(command_id)
    assert command is not None
    return command.state


async def test_a_command_runs_to_success_and_leaves_nothing_behind(
    running: CommandRunner, store: Datastore
) -> None:
    command_id = await submit(running)

    await running.wait_finished(command_id, 5)

    assert await stored_state(store, command_id) is CommandState.SUCCESS
    assert running._running == {}  # nothing kept per command once it ended


class StaleAnswers:
    """The store as one task sees it when its answers come late: each call runs at once, and its answer is
    held until ``gate.open`` is set. Whatever that task read or decided, it acts on it only afterwards.

    Only the calls of ``task`` are held: the command's own execution goes on meanwhile.
    """

    def __init__(self, store: Datastore, gate: Gate) -> None:
        self._store = store
        self._gate = gate
        self.task: asyncio.Task[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._store, name)
        if not inspect.iscoroutinefunction(call):
            return call

        async def late(*args: Any, **kwargs: Any) -> Any:
            answer = await call(*args, **kwargs)
            if asyncio.current_task() is self.task and not self._gate.open.is_set():
                self._gate.entered.set()
                await self._gate.open.wait()
            return answer

        return late


async def test_a_cancel_whose_answers_come_after_the_end_never_overwrites_the_final_state(
    running: CommandRunner, store: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stale-read race: a cancel (here through another agent's API, which does not run the command)
    learns the command is InProgress, the command ends, then the cancel acts. A cancel that read the
    state and then wrote Canceling would overwrite Success; a compare-and-set against the table cannot."""
    working, stale = Gate(), Gate()
    command_id = await submit(running)  # queued; its task has not run yet
    monkeypatch.setattr(store, "current_resources", working.hold(store.current_resources, after=False))
    await working.entered.wait()  # the command is InProgress
    answers = StaleAnswers(store, stale)
    elsewhere = CommandRunner(cast(Datastore, answers), PluginRegistry(RateLimiter()), RateLimiter())

    canceling = asyncio.create_task(elsewhere.cancel(command_id))
    answers.task = canceling
    await stale.entered.wait()  # the cancel's first store call has run, its answer is held
    working.open.set()
    await running.wait_finished(command_id, 5)  # the command ends meanwhile
    assert await stored_state(store, command_id) is CommandState.SUCCESS
    stale.open.set()
    await canceling

    assert await stored_state(store, command_id) is CommandState.SUCCESS


async def test_a_cancel_before_the_command_starts_is_not_overwritten_by_in_progress(
    running: CommandRunner, store: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Gate()
    moves: list[CommandState] = []
    execute, move = running._execute, store.move_command

    async def late(start: Any) -> None:
        held.entered.set()
        await held.open.wait()
        await execute(start)

    async def recorded(command_id: str, state: CommandState, *args: Any, **kwargs: Any) -> Any:
        moved = await move(command_id, state, *args, **kwargs)
        if moved is not None:
            moves.append(state)
        return moved

    monkeypatch.setattr(running, "_execute", late)
    monkeypatch.setattr(store, "move_command", recorded)
    command_id = await submit(running)
    await held.entered.wait()  # accepted, not started
    await running.cancel(command_id)
    held.open.set()
    await running.wait_finished(command_id, 5)

    assert moves[0] is CommandState.CANCELING
    assert CommandState.IN_PROGRESS not in moves
    assert (await stored_state(store, command_id)).is_final
    assert running._running == {}


async def test_cancel_of_a_finished_command_changes_nothing_and_keeps_nothing(
    running: CommandRunner, store: Datastore
) -> None:
    command_id = await submit(running)
    await running.wait_finished(command_id, 5)

    answered = await running.cancel(command_id)

    assert answered.state is CommandState.SUCCESS
    assert await stored_state(store, command_id) is CommandState.SUCCESS
    assert running._running == {}


async def test_cancel_of_an_unknown_command_is_a_key_error(running: CommandRunner) -> None:
    with pytest.raises(KeyError):
        await running.cancel("no-such-command")


async def test_an_agent_error_inside_the_executor_is_stored_with_its_real_reason(
    runner: CommandRunner, store: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = Command.new(CommandKind.APPLY, Mode.PATCH, {})
    missing = {"$res": True, "$label": "gone", "$type": BUCKET, "$stack": "s", "$property": "Arn"}
    update = ResourceUpdateRecord(
        command_id=command.id,
        update_id="u1",
        operation=Operation.CREATE,
        stack="s",
        type=BUCKET,
        label="b",
        target="t",
        state=UpdateState.PENDING,
        updated_at=utc_now(),
        desired_properties={"Policy": missing},
    )
    await store.create_command(command, [update])  # left by a previous agent: resumed at start

    failing = asyncio.Event()

    async def disk_full(*_: Any, **__: Any) -> None:
        failing.set()
        raise StoreError("disk full")

    monkeypatch.setattr(store, "save_progress", disk_full)
    task = asyncio.create_task(runner.run())
    try:
        await failing.wait()
        await runner.wait_finished(command.id, 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    stored = await store.get_command(command.id)
    assert stored is not None
    assert (stored.state, stored.message) == (CommandState.FAILED, "agent error: disk full")


async def test_a_store_outage_pauses_the_command_which_says_so_and_ends_when_the_store_is_back(
    runner: CommandRunner, store: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = Command.new(CommandKind.APPLY, Mode.PATCH, {})
    await store.create_command(command)  # left by a previous agent: resumed at start
    refused = asyncio.Event()
    back = asyncio.Event()
    real_move = store.move_command

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if not back.is_set():
            refused.set()
            raise StoreUnavailable("database or disk is full")
        return await real_move(*args, **kwargs)

    monkeypatch.setattr(store, "move_command", flaky)
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(refused.wait(), 5)
        message = runner.waiting_message(command.id)
        assert message is not None
        assert message.startswith("waiting for the datastore since ")
        assert "disk is full" in message
        assert not task.done()
        back.set()
        await runner.wait_finished(command.id, 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert await stored_state(store, command.id) is CommandState.SUCCESS
    assert runner.outage.since is None


async def test_when_even_the_failure_cannot_be_stored_the_runner_goes_on_and_the_command_is_resumable(
    runner: CommandRunner, store: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Command.new(CommandKind.APPLY, Mode.PATCH, {})
    await store.create_command(broken)  # left by a previous agent: resumed at start

    refused: list[CommandState] = []
    both_refused = asyncio.Event()

    async def refusing(command_id: str, state: CommandState, *_: Any, **__: Any) -> Any:
        refused.append(state)
        if len(refused) == 2:  # InProgress, then the Failed that would record it
            both_refused.set()
        raise StoreError("constraint violated")  # not an outage: nothing to wait for

    real_move = store.move_command
    monkeypatch.setattr(store, "move_command", refusing)
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(both_refused.wait(), 5)
        await runner.run_ended(broken.id)  # its run here ends; the store keeps it unfinished
        assert refused == [CommandState.IN_PROGRESS, CommandState.FAILED]
        assert not task.done()  # the runner survived the store failing twice over
        monkeypatch.setattr(store, "move_command", real_move)
        submitted = await runner.submit_apply({"stacks": [], "targets": [], "resources": []}, Mode.PATCH)
        assert submitted.command is not None
        await runner.wait_finished(submitted.command.id, 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    stored = await store.get_command(broken.id)
    assert stored is not None
    assert not stored.state.is_final  # unfinished, so the next agent start resumes it
    done = await store.get_command(submitted.command.id)
    assert done is not None
    assert done.state is CommandState.SUCCESS
