"""The event loop's lag: how much later than asked the loop wakes a task.

One loop serves the API, every plugin stream and every update; when something holds it (a large
response built in one go, a CPU-bound plan), heartbeats are answered late and plugins look dead.
Sleeping a known interval and measuring the overshoot shows that hold from the outside.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from formae.telemetry.metrics import AgentMetrics


class LoopLag:
    def __init__(
        self,
        metrics: AgentMetrics,
        interval: float = 0.5,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._metrics = metrics
        self._interval = interval
        self._clock = clock
        self._sleep = sleep

    async def sample(self) -> float:
        """Sleep one interval; the lag seen, also handed to the metrics."""
        asked = self._clock()
        await self._sleep(self._interval)
        lag = max(0.0, self._clock() - asked - self._interval)
        self._metrics.loop_lag(lag)
        return lag

    async def run(self) -> None:
        """Sample for the agent's life (a task of its TaskGroup)."""
        while True:
            await self.sample()
