"""The leader lease: one agent at a time runs the cluster-wide singletons.

Sync, discovery and stack policies must not run on every agent sharing a store (each would
destroy an expired stack, each would read the whole cloud). The ``Schedule`` loops ask
``leads()``; this lease answers it. Every ``every`` seconds the agent takes or keeps the row
``leader_leases['schedules']`` for ``duration`` seconds (free, expired or already its own: one
conditional UPDATE); a new holder bumps its generation.

``leads()`` is judged on this agent's monotonic clock from the moment the request was *sent*, a
little short of the lease: a leader whose renewals stop reaching the store (partitioned, paused,
the store down) stops leading before the lease can expire and pass to another agent. What a paused
leader may still do after that — finish a sync read already in flight — writes through the
store's compare-and-append (``Datastore.observe``), so two leaders' sync writes cannot corrupt
the inventory; a policy's destroy is a command like any other, refused on a claimed stack.

At each renewal that finds this agent leading, ``while_leading`` runs (the synchronizer continues
the sync runs whose agent died); it must be brief, as the next renewal waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from formae.agent.leases import AgentIdentity
from formae.store import Datastore, StoreError

log = logging.getLogger("formae.agent.leadership")

SCHEDULES = "schedules"
MARGIN = 0.8
"""The share of the lease a leader counts on: it stops leading well before the lease can pass on."""


class LeaderLease:
    def __init__(
        self,
        store: Datastore,
        identity: AgentIdentity,
        *,
        duration: float,
        every: float,
        name: str = SCHEDULES,
        clock: Callable[[], float] = time.monotonic,
        while_leading: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._store = store
        self._owner = identity.owner
        self._duration = duration
        self._every = every
        self._name = name
        self._clock = clock
        self._while_leading = while_leading
        self._valid_until = float("-inf")
        self.generation: int | None = None

    def leads(self) -> bool:
        return self._clock() < self._valid_until

    async def renew(self) -> bool:
        """Take or keep the lease once; whether this agent leads now."""
        sent = self._clock()
        was_leading = self.leads()
        generation = await self._store.acquire_leadership(self._name, self._owner, self._duration)
        if generation is None:
            if was_leading:
                log.warning("no longer the leader of %s: another agent holds it", self._name)
            self._valid_until, self.generation = float("-inf"), None
            return False
        self._valid_until = sent + self._duration * MARGIN
        if not was_leading or generation != self.generation:
            log.info("leader of %s (generation %d)", self._name, generation)
            self.generation = generation
        if self._while_leading is not None:
            await self._while_leading()
        return True

    async def run(self) -> None:
        """Renew for ever; an outage lets the lease lapse here first (``leads()`` turns false)."""
        while True:
            try:
                await self.renew()
            except StoreError as error:
                log.warning("cannot renew the leader lease of %s: %s", self._name, error)
            await asyncio.sleep(self._every)

    async def release(self) -> None:
        """A clean stop hands the lease on at once instead of after it expires."""
        self._valid_until = float("-inf")
        try:
            await self._store.release_leadership(self._name, self._owner)
        except StoreError as error:
            log.warning("cannot release the leader lease of %s: %s", self._name, error)
