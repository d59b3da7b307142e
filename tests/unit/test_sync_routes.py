"""The sync and discovery routes' one long poll of a kept run, and their one query check."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import HTTPException

from formae.agent.run_queue import BackgroundRun, RunState
from formae.api.sync_routes import _ended_within, _parsed

pytestmark = pytest.mark.timeout(5)


async def test_a_run_not_kept_is_a_404_naming_its_kind_and_id() -> None:
    with pytest.raises(HTTPException) as refused:
        await _ended_within(None, "discovery", "r-9", 0)
    assert refused.value.status_code == 404
    assert refused.value.detail == "no discovery r-9 (the agent keeps the last 20 runs)"


async def test_the_long_poll_answers_as_soon_as_the_run_ends() -> None:
    run = BackgroundRun("r-1")
    run.move(RunState.RUNNING)
    asyncio.get_running_loop().call_soon(run.move, RunState.SUCCESS)

    assert (await _ended_within(run, "sync", "r-1", 60)).state is RunState.SUCCESS


async def test_without_wait_the_run_is_answered_as_it_is() -> None:
    run = BackgroundRun("r-2")
    assert (await _ended_within(run, "sync", "r-2", 0)).state is RunState.QUEUED


def test_a_bad_query_is_a_400_saying_what_is_wrong() -> None:
    with pytest.raises(HTTPException) as refused:
        _parsed("colour:blue")
    assert refused.value.status_code == 400
    assert "colour" in str(refused.value.detail)
