"""``unless_set``: work raced against an event, with nothing left running and nothing lost."""

from __future__ import annotations

import asyncio

import pytest

from formae.race import Interrupted, unless_set

pytestmark = pytest.mark.timeout(5)


def leftovers(before: set[asyncio.Task[object]]) -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]


async def test_the_work_s_result_is_returned_and_the_wait_for_the_event_ends() -> None:
    before = asyncio.all_tasks()

    assert await unless_set(asyncio.sleep(0, "done"), asyncio.Event()) == "done"
    assert leftovers(before) == []


async def test_an_event_set_first_interrupts_and_cancels_the_work() -> None:
    event, started, cancelled = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def set_when_started() -> None:
        await started.wait()
        event.set()

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(set_when_started())
        with pytest.raises(Interrupted):
            await unless_set(work(), event)
    assert cancelled.is_set()


async def test_a_caller_cancelled_while_waiting_leaves_no_task_behind() -> None:
    before = asyncio.all_tasks()
    waiting = asyncio.create_task(unless_set(asyncio.Event().wait(), asyncio.Event()))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # inside: waiting on the work and on the event

    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting

    assert leftovers(before) == []


async def test_work_done_in_the_same_moment_as_the_event_keeps_its_result() -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    queue.put_nowait("finished update")
    event = asyncio.Event()
    event.set()

    assert await unless_set(queue.get(), event) == "finished update"
    assert queue.empty()


async def test_an_interrupted_queue_get_takes_nothing_from_the_queue() -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    event = asyncio.Event()
    asyncio.get_running_loop().call_soon(event.set)

    with pytest.raises(Interrupted):
        await unless_set(queue.get(), event)
    queue.put_nowait("later")
    assert await queue.get() == "later"


async def test_the_work_s_exception_is_raised_as_it_is() -> None:
    async def failing() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await unless_set(failing(), asyncio.Event())
