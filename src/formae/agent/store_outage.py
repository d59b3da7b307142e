"""Riding out a datastore outage: running commands pause, retry the store, and carry on.

A full disk (SQLite), PostgreSQL refusing connections or a statement that times out must not turn
a running command into a zombie (stored ``InProgress`` with nothing running) that a later apply or
restart runs a second time. Every store access of a running command goes through ``persist``: on
``StoreUnavailable`` the command waits instead of failing. While the store fails, one waiting
writer at a time retries its own write (a real probe, at a capped exponential backoff); the others
queue behind it, so a 2,000-update apply does not hammer a sick database. When a write succeeds the
outage is over and everyone proceeds. ``since`` and ``reason`` are what ``status command`` shows.

Before the probing write, ``on_recovering`` runs (the agent renews its command leases there), so a
command whose lease another agent took during the outage is stopped before it writes anything.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol, TypeVar

from formae.store import StoreUnavailable, utc_now

T = TypeVar("T")

log = logging.getLogger("formae.agent.store_outage")


class Persist(Protocol):
    async def __call__(self, operation: Callable[[], Awaitable[T]], /) -> T: ...


class StoreOutage:
    """The agent's view of its datastore's health, and the gate every running command writes through."""

    def __init__(
        self,
        *,
        initial_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._initial_delay = initial_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._trial = asyncio.Lock()
        self._failures = 0
        self.since: datetime | None = None
        """When the current outage began; None while the store works."""
        self.reason = ""
        self.on_recovering: Callable[[], Awaitable[None]] | None = None

    @property
    def waiting_message(self) -> str | None:
        """What a paused command shows: ``waiting for the datastore since … (reason)``."""
        if self.since is None:
            return None
        return f"waiting for the datastore since {self.since.isoformat(timespec='seconds')}: {self.reason}"

    async def persist(self, operation: Callable[[], Awaitable[T]], /) -> T:
        """``operation()``, retried until the store takes it; other errors propagate unchanged."""
        while True:
            if self.since is None:
                try:
                    return await operation()
                except StoreUnavailable as error:
                    self._failed(error)
            async with self._trial:  # one probe at a time while the store fails
                if self.since is None:
                    continue
                try:
                    if self.on_recovering is not None:
                        await self.on_recovering()
                    await asyncio.sleep(0)  # a command stopped by on_recovering stops here, unwritten
                    result = await operation()
                except StoreUnavailable as error:
                    self._failed(error)
                    await self._sleep(self._delay())
                    continue
                self._recovered()
                return result

    def _failed(self, error: StoreUnavailable) -> None:
        self._failures += 1
        self.reason = str(error)
        if self.since is None:
            self.since = utc_now()
            log.error("datastore unavailable; running commands pause until it is back: %s", error)

    def _delay(self) -> float:
        delay = min(self._max_delay, self._initial_delay * 2 ** min(self._failures, 30))
        return float(delay * random.uniform(0.75, 1.0))

    def _recovered(self) -> None:
        if self.since is not None:
            log.warning(
                "datastore available again after %s; running commands continue", utc_now() - self.since
            )
        self.since = None
        self.reason = ""
        self._failures = 0
