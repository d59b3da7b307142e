"""RunQueue: background runs queued, served one at a time, the latest kept; a run's bug fails only it."""

from __future__ import annotations

import asyncio

import pytest

from formae.agent.run_queue import BackgroundRun, RunQueue, RunState

pytestmark = pytest.mark.timeout(5)


async def test_runs_are_served_in_order_one_at_a_time_and_a_failing_one_fails_alone() -> None:
    order: list[str] = []
    ended: list[tuple[str, RunState]] = []
    running = 0

    async def execute(run: BackgroundRun) -> None:
        nonlocal running
        running += 1
        assert running == 1, "two runs at once"
        run.move(RunState.RUNNING)
        await asyncio.sleep(0)
        order.append(run.id)
        running -= 1
        if run.id == "bad":
            raise ValueError("a bug")
        run.move(RunState.SUCCESS)

    runs: RunQueue[BackgroundRun] = RunQueue("test", execute, ended=lambda k, s: ended.append((k, s)))
    first, bad, last = (runs.enqueue(BackgroundRun(i)) for i in ("first", "bad", "last"))
    async with asyncio.TaskGroup() as tasks:
        serving = tasks.create_task(runs.serve())
        await asyncio.wait_for(last.finished.wait(), 2)
        serving.cancel()

    assert order == ["first", "bad", "last"]
    assert (first.state, bad.state, last.state) == (RunState.SUCCESS, RunState.FAILED, RunState.SUCCESS)
    assert bad.errors == ["agent error: a bug"]
    assert ended == [("test", RunState.SUCCESS), ("test", RunState.FAILED), ("test", RunState.SUCCESS)]


def test_only_the_latest_runs_are_kept_and_a_waiting_one_can_be_found() -> None:
    async def never(_run: BackgroundRun) -> None:
        raise AssertionError("not served here")

    runs: RunQueue[BackgroundRun] = RunQueue("test", never, keep=2)
    for i in range(3):
        runs.enqueue(BackgroundRun(f"r{i}"))

    assert runs.get("r0") is None
    assert runs.latest() is runs.get("r2")
    assert runs.queued(lambda r: r.id == "r1") is runs.get("r1")


def test_a_move_the_table_does_not_allow_raises() -> None:
    run = BackgroundRun("r")
    run.move(RunState.RUNNING)
    run.move(RunState.SUCCESS)
    assert run.finished.is_set()
    assert run.finished_at is not None
    with pytest.raises(RuntimeError, match="BackgroundRun r: Success -> Failed"):
        run.move(RunState.FAILED)
