"""Schedules: the agent's periodic work (sync, discovery, stack policies), behind one small seam.

Each schedule is a loop supervised in the agent's TaskGroup: wait the interval, and if this agent
leads, run the job. A failing run is logged and the next one comes at its time, so a datastore
hiccup does not stop syncing for good, and an interval of 0 switches the schedule off.

``Leadership`` is the seam for issue 16: several agents sharing one PostgreSQL must not all sync
and destroy expired stacks at once; a leader lease will answer ``leads()``. Until then every agent
leads (``AlwaysLeader``): one agent per store is what this version supports.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Protocol

from formae.environment import SettingError

log = logging.getLogger("formae.agent.schedules")


class Leadership(Protocol):
    def leads(self) -> bool:
        """Whether this agent should run the periodic work now."""
        ...


class AlwaysLeader:
    def leads(self) -> bool:
        return True


class Schedule:
    """A periodic job; ``retime`` changes its interval while it runs (a reload), 0 switching it off."""

    def __init__(self, name: str, interval: float, job: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.interval = interval
        """Seconds between runs; 0 is off."""
        self.job = job
        self._retimed = asyncio.Event()

    def retime(self, interval: float) -> None:
        if interval != self.interval:
            log.info("%s interval changed from %gs to %gs", self.name, self.interval, interval)
            self.interval = interval
            self._retimed.set()

    async def run(self, leadership: Leadership) -> None:
        """Forever: wait, then run the job if this agent leads; while off, wait to be retimed."""
        if self.interval > 0:
            log.info("%s every %gs", self.name, self.interval)
        else:
            log.info("%s is off until a reload gives it an interval", self.name)
        while True:
            if not await self._wait_interval():
                continue
            if not leadership.leads():
                continue
            try:
                await self.job()
            except Exception:
                log.exception("%s failed; the next run is in %gs", self.name, self.interval)

    async def _wait_interval(self) -> bool:
        """True when a whole interval passed; False when retimed meanwhile (the wait starts again)."""
        self._retimed.clear()
        timeout = self.interval if self.interval > 0 else None
        try:
            await asyncio.wait_for(self._retimed.wait(), timeout)
        except TimeoutError:
            return True
        return False


def parse_interval(name: str, raw: str) -> float:
    """Seconds between runs: a finite number ≥ 0, where 0 means off."""
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(name, raw, "is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise SettingError(name, raw, "must be 0 (off) or a positive number of seconds")
    return value
