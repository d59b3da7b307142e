"""Queued background runs: what sync and discovery share, written once.

Both take requests (from the API, a schedule or a policy), queue them, execute them one at a time for
the agent's life, keep the latest few in memory for ``GET /api/v1/{sync,discovery}/{id}`` and the
metrics, and let a caller wait for one to end. Each kept its own copy of that machinery (the run's
states and table, the runs list, start/get/latest, the serve loop); only what one run *does* differs,
and that is all a user of :class:`RunQueue` writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from formae.store import utc_now

log = logging.getLogger("formae.agent.run_queue")


class RunState(StrEnum):
    QUEUED = "Queued"
    RUNNING = "Running"
    SUCCESS = "Success"
    FAILED = "Failed"
    """Some of its work failed; what the rest did was kept."""


RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.FAILED}),
    RunState.RUNNING: frozenset({RunState.SUCCESS, RunState.FAILED}),
    RunState.SUCCESS: frozenset(),
    RunState.FAILED: frozenset(),
}


@dataclass
class BackgroundRun:
    """One run's identity and progress; a kind of run adds its own request and counts."""

    id: str
    state: RunState = field(default=RunState.QUEUED, kw_only=True)
    created_at: datetime = field(default_factory=utc_now, kw_only=True)
    finished_at: datetime | None = field(default=None, kw_only=True)
    errors: list[str] = field(default_factory=list, kw_only=True)
    finished: asyncio.Event = field(default_factory=asyncio.Event, kw_only=True)

    def move(self, state: RunState) -> None:
        """The one writer of ``state``: a move the table does not allow is a bug, and raises."""
        if state not in RUN_TRANSITIONS[self.state]:
            raise RuntimeError(f"{type(self).__name__} {self.id}: {self.state} -> {state}")
        self.state = state
        if state in (RunState.SUCCESS, RunState.FAILED):
            self.finished_at = utc_now()
            self.finished.set()


R = TypeVar("R", bound=BackgroundRun)


class RunQueue(Generic[R]):
    """Runs of one kind, queued and executed one at a time by ``serve``; the latest ``keep`` are kept."""

    def __init__(
        self,
        kind: str,
        execute: Callable[[R], Awaitable[None]],
        *,
        keep: int = 20,
        ended: Callable[[str, RunState], None] = lambda _kind, _state: None,
    ) -> None:
        self._kind = kind
        self._execute = execute
        self._ended = ended
        """Told the kind and final state of each run (the metrics' hook)."""
        self._queue: asyncio.Queue[R] = asyncio.Queue()
        self._runs: deque[R] = deque(maxlen=keep)

    def enqueue(self, run: R) -> R:
        self._runs.append(run)
        self._queue.put_nowait(run)
        return run

    def queued(self, matches: Callable[[R], bool]) -> R | None:
        """A run still waiting that ``matches``: one that would answer the same request."""
        return next((r for r in self._runs if r.state is RunState.QUEUED and matches(r)), None)

    def latest(self) -> R | None:
        """The run in progress, or else the latest one: what the metrics show as progress."""
        running = [r for r in self._runs if r.state is RunState.RUNNING]
        return running[-1] if running else (self._runs[-1] if self._runs else None)

    def get(self, run_id: str) -> R | None:
        return next((r for r in self._runs if r.id == run_id), None)

    async def serve(self) -> None:
        """Execute queued runs, one at a time, for as long as the agent runs; a run's bug fails only it."""
        while True:
            run = await self._queue.get()
            try:
                await self._execute(run)
            except Exception as error:
                log.exception("%s %s failed inside the agent", self._kind, run.id)
                run.errors.append(f"agent error: {error}")
                run.move(RunState.FAILED)
            self._ended(self._kind, run.state)
