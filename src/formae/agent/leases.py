"""One agent per home, and one executor per command: the home lock and the command leases.

Two agents executing one command send every operation twice. Two guards make that impossible:

- ``HomeLock``: an OS file lock (``flock``) on ``{home}/run/agent.lock``, taken by every way of
  starting an agent (foreground, ``--background``, tests) before it opens the store or writes
  ``run/agent.json``. The kernel drops it when the process dies, however it dies, so a lock held
  always means a live agent. A second start on the same home is refused, naming the holder.
- ``CommandLeases``: a command is executed only under its row lease (``commands.lease_owner`` /
  ``lease_expires_at``), taken before the first step, renewed while it runs and released at its end.
  A command whose lease a live other agent holds (another home on the same PostgreSQL or SQLite
  file) is never executed here. A lease left by an earlier agent *of this home* is taken over at
  once — holding the home lock proves that agent is dead — and any other lease once it expires.

An ``AgentIdentity`` names the lease holder: ``{home id}/{host}/{pid}/{nonce}``, the home id being
a random id kept in ``{home}/agent.id``. Several agents sharing one PostgreSQL (issue 16) build on
these leases; adopting commands whose leases expire while this agent runs is theirs to add.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO

from formae.store import Datastore, StoreUnavailable, utc_now

log = logging.getLogger("formae.agent.leases")


class HomeLocked(Exception):
    """Another live agent holds this home."""


class HomeLock:
    """``flock`` on ``{home}/run/agent.lock``, held for the agent's life; the holder's pid inside."""

    def __init__(self, home: Path) -> None:
        self.path = home / "run" / "agent.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> HomeLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "unknown"
            file.close()
            raise HomeLocked(
                f"another agent (pid {holder}) is running on {self.path.parent.parent}; "
                "stop it first (formae agent stop) or use another --home"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self._file = file
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None

    def __enter__(self) -> HomeLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


@dataclass(frozen=True)
class AgentIdentity:
    home_id: str
    host: str
    pid: int
    nonce: str

    @classmethod
    def of_home(cls, home: Path) -> AgentIdentity:
        """This process's identity; the home id is made once and kept in ``{home}/agent.id``."""
        path = home / "agent.id"
        try:
            home_id = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            home_id = ""
        if not home_id:
            home_id = secrets.token_hex(8)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(home_id + "\n", encoding="utf-8")
        return cls(home_id, socket.gethostname(), os.getpid(), secrets.token_hex(4))

    @property
    def owner(self) -> str:
        """What ``lease_owner`` holds: every agent of this home starts with ``home_prefix``."""
        return f"{self.home_prefix}{self.host}/{self.pid}/{self.nonce}"

    @property
    def home_prefix(self) -> str:
        return f"{self.home_id}/"


class CommandLeases:
    """The leases this agent holds on the commands it executes, renewed while they run."""

    def __init__(
        self,
        store: Datastore,
        identity: AgentIdentity,
        *,
        duration: float = 30.0,
        on_lost: Callable[[set[str]], None] = lambda _: None,
    ) -> None:
        self._store = store
        self.identity = identity
        self._duration = duration
        self._held: set[str] = set()
        self.on_lost = on_lost
        """Called with the commands whose lease another agent took: they must stop at once."""

    async def acquire(self, command_id: str) -> bool:
        """True if this agent may execute the command now; False if a live other agent holds it."""
        acquired = await self._store.acquire_command_lease(
            command_id, self.identity.owner, self._until(), successor_of=self.identity.home_prefix
        )
        if acquired:
            self._held.add(command_id)
        return acquired

    async def release(self, command_id: str) -> None:
        self._held.discard(command_id)
        await self._store.release_command_lease(command_id, self.identity.owner)

    async def renew(self) -> None:
        """Extend every lease held; tell ``on_lost`` about those another agent took meanwhile."""
        if not self._held:
            return
        still = await self._store.renew_command_leases(self.identity.owner, self._until())
        lost = self._held - still
        if lost:
            log.error("lost the lease of commands %s to another agent; stopping them here", sorted(lost))
            self._held -= lost
            self.on_lost(lost)

    async def run(self) -> None:
        """Renew every third of the lease's duration, for ever; an outage only skips a round."""
        while True:
            await asyncio.sleep(self._duration / 3)
            try:
                await self.renew()
            except StoreUnavailable as error:
                log.warning("cannot renew command leases (the datastore is unavailable): %s", error)

    def _until(self) -> datetime:
        return utc_now() + timedelta(seconds=self._duration)
