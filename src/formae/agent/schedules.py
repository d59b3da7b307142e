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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Schedule:
    name: str
    interval: float
    """Seconds between runs; 0 is off."""
    job: Callable[[], Awaitable[object]]

    async def run(self, leadership: Leadership) -> None:
        """Forever: wait, then run the job if this agent leads. Returns at once when off."""
        if self.interval <= 0:
            log.info("%s is off", self.name)
            return
        log.info("%s every %gs", self.name, self.interval)
        while True:
            await asyncio.sleep(self.interval)
            if not leadership.leads():
                continue
            try:
                await self.job()
            except Exception:
                log.exception("%s failed; the next run is in %gs", self.name, self.interval)


def parse_interval(name: str, raw: str) -> float:
    """Seconds between runs: a finite number ≥ 0, where 0 means off."""
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(name, raw, "is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise SettingError(name, raw, "must be 0 (off) or a positive number of seconds")
    return value
