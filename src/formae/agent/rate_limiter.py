"""RateLimiter: one token bucket per namespace, sized from the plugin's announcement.

Waiters reserve their slot before sleeping (the bucket may go negative), so a burst of callers
is released in order at the configured rate with one sleep each, no polling and no thundering herd.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float
    """Tokens added per second; 0 or less means unlimited."""
    burst: float
    tokens: float
    updated: float

    def reserve(self, now: float) -> float:
        """Take one token; the seconds to wait before using it."""
        if self.rate <= 0:
            return 0.0
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def give_back(self) -> None:
        """Return a reserved token that will not be used (its waiter was cancelled)."""
        if self.rate > 0:
            self.tokens = min(self.burst, self.tokens + 1)


class InFlightLimits:
    """How many calls may wait on a namespace's plugins at once, across every running command.

    ``override`` answers a namespace's configured bound (None: ``per_namespace``); it is asked once
    per namespace, when its first call comes, so a changed one applies after a restart.
    """

    def __init__(
        self, per_namespace: int = 256, override: Callable[[str], int | None] = lambda _namespace: None
    ) -> None:
        self._per_namespace = per_namespace
        self._override = override
        self._slots: dict[str, asyncio.Semaphore] = {}

    def of(self, namespace: str) -> asyncio.Semaphore:
        if namespace not in self._slots:
            self._slots[namespace] = asyncio.Semaphore(self.bound(namespace))
        return self._slots[namespace]

    def bound(self, namespace: str) -> int:
        """How many calls may wait on ``namespace``'s plugins at once."""
        return self._override(namespace) or self._per_namespace


class RateLimiter:
    """Token buckets by namespace, at the rate each plugin announced unless the configuration overrides it.

    ``override`` answers a namespace's configured rate (None: keep the announced one); ``refresh``
    applies a changed one at once (a reload), to every namespace announced so far.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        override: Callable[[str], float | None] = lambda _namespace: None,
    ) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._announced: dict[str, float] = {}
        self.override = override

    def configure(self, namespace: str, rate: float, burst: float | None = None) -> None:
        """Set a namespace's announced rate (operations per second); ``burst``: one second's worth."""
        self._announced[namespace] = rate
        configured = self.override(namespace)
        effective = configured if configured is not None else rate
        size = burst if burst is not None else max(1.0, effective)
        self._buckets[namespace] = TokenBucket(effective, size, size, self._clock())

    def announced(self, namespace: str) -> float | None:
        return self._announced.get(namespace)

    def refresh(self) -> None:
        """Apply ``override`` again to every namespace whose effective rate it changes."""
        for namespace, announced in self._announced.items():
            configured = self.override(namespace)
            if (configured if configured is not None else announced) != self.rate(namespace):
                self.configure(namespace, announced)

    def rate(self, namespace: str) -> float:
        bucket = self._buckets.get(namespace)
        return bucket.rate if bucket else 0.0

    def reserve(self, namespace: str) -> float:
        bucket = self._buckets.get(namespace)
        return bucket.reserve(self._clock()) if bucket else 0.0

    async def acquire(self, namespace: str) -> float:
        """Wait for a token; the seconds waited. A caller cancelled while waiting gives its slot back."""
        bucket = self._buckets.get(namespace)
        if bucket is None:
            return 0.0
        delay = bucket.reserve(self._clock())
        if delay <= 0:
            return 0.0
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            bucket.give_back()
            raise
        return delay
