"""The agent's live figures over the last minutes, sampled for the console's sparklines.

The store keeps commands, so their trends can be read back; the agent's moment-to-moment state
is kept nowhere: plugin calls per second (from the agent's metrics, when they are on), calls in
flight, healthy plugins, datastore commits and their batching, the event loop's lag. So
:class:`FigureHistory` samples it every ``interval`` seconds and keeps the last ``capacity``
samples in memory. The lag is the sampler's own: how much later than asked its sleep ended. One
task of the agent's TaskGroup runs it; the clock and the sleep are injected, so its tests never
wait.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from formae.agent.registry import PluginRegistry
from formae.console.charts import Series
from formae.store import Datastore
from formae.telemetry.stats import AgentStats

INTERVAL = 5.0
CAPACITY = 120
"""Ten minutes at the default interval."""


@dataclass(frozen=True, slots=True)
class Figure:
    title: str
    unit: str


LAG = Figure("Event loop lag", "ms")
IN_FLIGHT = Figure("Plugin calls in flight", "calls")
HEALTHY = Figure("Healthy plugins", "plugins")
COMMITS = Figure("Datastore commits per second", "commits/s")
BATCH = Figure("Writes per datastore commit", "writes")
CALLS = Figure("Plugin calls per second", "calls/s")


class AgentFigures:
    """Reads the figures from the registry and the store; datastore rates are since the last read."""

    def __init__(
        self, registry: PluginRegistry, store: Datastore, stats: Callable[[], AgentStats] | None = None
    ) -> None:
        self._registry = registry
        self._store = store
        self._last = store.write_stats
        self._stats = stats
        self._calls = self._total_calls()

    def _total_calls(self) -> int:
        return sum(c.calls for c in self._stats().plugin_calls) if self._stats else 0

    def read(self, seconds: float) -> dict[Figure, float]:
        plugins = self._registry.plugins()
        stats = self._store.write_stats
        commits = stats.transactions - self._last.transactions
        writes = stats.writes - self._last.writes
        self._last = stats
        calls, self._calls = self._calls, self._total_calls()
        return {
            CALLS: (self._calls - calls) / seconds if seconds > 0 else 0.0,
            IN_FLIGHT: float(sum(p.link.in_flight for p in plugins)),
            HEALTHY: float(sum(1 for p in plugins if p.healthy)),
            COMMITS: commits / seconds if seconds > 0 else 0.0,
            BATCH: writes / commits if commits else 0.0,
        }


class FigureHistory:
    def __init__(
        self,
        read: Callable[[float], dict[Figure, float]],
        interval: float = INTERVAL,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._read = read
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._samples: deque[dict[Figure, float]] = deque(maxlen=capacity)

    async def run(self) -> None:
        while True:
            await self.sample_once()

    async def sample_once(self) -> None:
        started = self._clock()
        await self._sleep(self._interval)
        elapsed = self._clock() - started
        sample = self._read(elapsed)
        sample[LAG] = max(0.0, elapsed - self._interval) * 1000
        self._samples.append(sample)

    def series(self) -> list[Series]:
        figures = [
            f for f in (LAG, CALLS, IN_FLIGHT, HEALTHY, COMMITS, BATCH) if any(f in s for s in self._samples)
        ]
        return [
            Series(f.title, f.unit, tuple(round(s.get(f, 0.0), 2) for s in self._samples)) for f in figures
        ]
