"""Membership: this agent's row in the store's ``agents`` table, renewed while it runs.

Agents sharing one PostgreSQL know of each other only through the store: each keeps a row under
its home's stable id (``{home}/agent.id``) with this run's lease owner, host, pid, version, REST
API URL and plugin address, renewed every ``every`` seconds to ``duration`` ahead (the database's
clock). ``formae status agent`` lists them; a later join token may list every agent's address.

A SQLite file is for one agent: joining it while another home's agent has a live row is refused
(``StoreTaken``) before the agent resumes or runs anything, since two processes writing one
SQLite file would each take the other's expired leases for a dead agent's.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta

from formae.agent.leases import AgentIdentity
from formae.store import AgentRecord, Datastore, StoreError

log = logging.getLogger("formae.agent.membership")


class StoreTaken(Exception):
    """The store is a SQLite file another agent uses."""


class Membership:
    def __init__(
        self,
        store: Datastore,
        identity: AgentIdentity,
        *,
        version: str,
        duration: float,
        every: float,
    ) -> None:
        self._store = store
        self.identity = identity
        self._duration = duration
        self._every = every
        now = store.now()
        self._record = AgentRecord(
            id=identity.home_id, owner=identity.owner, host=identity.host, pid=identity.pid,
            version=version, api_url="", plugin_address="",
            started_at=now, renewed_at=now, expires_at=now,
        )  # fmt: skip

    async def join(self, *, api_url: str = "", plugin_address: str = "") -> None:
        """Write (or rewrite) this agent's row; StoreTaken if it is a SQLite file another agent uses."""
        await self._store.measure_clock()
        now = self._store.now()
        self._record = replace(
            self._record,
            api_url=api_url or self._record.api_url,
            plugin_address=plugin_address or self._record.plugin_address,
            renewed_at=now,
            expires_at=now + timedelta(seconds=self._duration),
        )
        other = await self._store.register_agent(self._record, exclusive=not self._store.shared)
        if other is not None:
            raise StoreTaken(
                f"the SQLite store {self._store.url} is used by another agent (home id {other.id}, "
                f"pid {other.pid} on {other.host}, API {other.api_url or 'unknown'}); a SQLite file "
                "serves one agent: stop that agent, or share a PostgreSQL store (--store-url "
                "postgresql://…) to run several"
            )

    async def run(self) -> None:
        """Renew the row for ever (and the clock's offset with it); an outage only skips a round."""
        while True:
            await asyncio.sleep(self._every)
            try:
                await self._store.measure_clock()
                await self._store.renew_agent(self.identity.home_id, self.identity.owner, self._duration)
            except StoreError as error:
                log.warning("cannot renew this agent's row in the store: %s", error)

    async def leave(self) -> None:
        """A clean stop: the row expires now. A failure only means it expires on its own."""
        try:
            await self._store.retire_agent(self.identity.home_id, self.identity.owner)
        except StoreError as error:
            log.warning("cannot retire this agent's row in the store: %s", error)
