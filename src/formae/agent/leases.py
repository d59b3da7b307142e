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
a random id kept in ``{home}/agent.id`` (the agent's stable identity: its ``agents`` row). With
several agents on one PostgreSQL, a command whose agent died is taken over by another once its
lease expires (``CommandRunner.adopt``, the same path as a resume at start); each change of hands
bumps the lease's generation, the ``Fence`` that every write of the executor carries.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import IO

from formae.store import Command, CommandState, Datastore, Fence, StoreError, StoreUnavailable

log = logging.getLogger("formae.agent.leases")

TRUST = 0.8
"""The share of a lease an agent acts on before it asks the store again: it stops sending requests for
a command before the lease can expire and pass to another agent (``CommandLeases.confirm``)."""


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
    """The leases this agent holds on the commands it executes, renewed while they run.

    Each lease held comes with its ``Fence`` (the lease's generation), which the command's
    executor passes with every write: once another agent has taken the lease over, those writes
    match nothing. Durations are timed by the database's clock (``Datastore.now``).
    """

    def __init__(
        self,
        store: Datastore,
        identity: AgentIdentity,
        *,
        duration: float = 6.0,
        renew_every: float | None = None,
        on_lost: Callable[[set[str]], None] = lambda _: None,
        on_canceled: Callable[[set[str]], None] = lambda _: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.identity = identity
        self.duration = duration
        self.renew_every = renew_every if renew_every is not None else duration / 3
        self._held: dict[str, Fence] = {}
        self._trusted_until: dict[str, float] = {}
        """Per lease, until when this agent may act on it by its own monotonic clock: a little short of
        the lease, counted from when the last acquire or renewal was *sent*."""
        self._clock = clock
        self._renewing: asyncio.Task[None] | None = None
        self.on_lost = on_lost
        """Called with the commands whose lease another agent took: they must stop at once."""
        self.on_canceled = on_canceled
        """Called with held commands found Canceling in the store: a cancel sent to another agent."""

    def lease_new(self, command: Command) -> Command:
        """``command`` as it is to be created: with this agent's lease already on it, and held.

        A new command is never without a lease, so no other agent takes it while it is planned.
        """
        self._held[command.id] = Fence(command.id, 0)
        self._trusted_until[command.id] = self._clock() + self.duration * TRUST
        until = self._store.now() + timedelta(seconds=self.duration)
        return replace(command, lease_owner=self.identity.owner, lease_expires_at=until)

    def forget(self, command_id: str) -> None:
        """Stop renewing a lease held for a command that was not stored after all."""
        self._held.pop(command_id, None)
        self._trusted_until.pop(command_id, None)

    def fence(self, command_id: str) -> Fence | None:
        return self._held.get(command_id)

    def held(self) -> set[str]:
        return set(self._held)

    async def acquire(self, command_id: str) -> Fence | None:
        """The fence if this agent may execute the command now; None if a live other agent holds it."""
        sent = self._clock()
        fence = await self._store.acquire_command_lease(
            command_id, self.identity.owner, self.duration, successor_of=self.identity.home_prefix
        )
        if fence is not None:
            self._held[command_id] = fence
            self._trusted_until[command_id] = sent + self.duration * TRUST
        return fence

    def trusted(self, command_id: str) -> bool:
        """Whether this agent may still act on the lease without asking the store again."""
        return command_id in self._held and self._clock() < self._trusted_until.get(command_id, 0.0)

    async def confirm(self, command_id: str) -> None:
        """Return once the lease is known to be this agent's; cancel the caller if it was lost.

        Called before every request sent to a plugin. An agent that was paused (SIGSTOP, a VM
        frozen, the event loop stalled) or cut off from the store longer than its lease cannot
        know whether another agent took the command over: it asks the store (one renewal shared
        by every caller) before it sends anything, and waits while the store cannot answer.
        """
        while not self.trusted(command_id):
            if command_id not in self._held:
                raise asyncio.CancelledError(f"the lease of command {command_id} was lost")
            try:
                await self._renew_shared()
            except StoreError as error:
                log.warning("cannot confirm the lease of command %s: %s", command_id, error)
                await asyncio.sleep(self.renew_every)

    async def _renew_shared(self) -> None:
        if self._renewing is None or self._renewing.done():
            self._renewing = asyncio.ensure_future(self.renew())
        await asyncio.shield(self._renewing)

    async def release(self, command_id: str) -> None:
        self._held.pop(command_id, None)
        self._trusted_until.pop(command_id, None)
        await self._store.release_command_lease(command_id, self.identity.owner)

    async def renew(self) -> None:
        """Extend every lease held; tell ``on_lost`` about those another agent took meanwhile."""
        if not self._held:
            return
        sent = self._clock()
        still = await self._store.renew_command_leases(self.identity.owner, list(self._held), self.duration)
        for command_id in still:
            self._trusted_until[command_id] = sent + self.duration * TRUST
        lost = set(self._held) - set(still)
        if lost:
            log.error("lost the lease of commands %s to another agent; stopping them here", sorted(lost))
            for command_id in lost:
                self._held.pop(command_id, None)
                self._trusted_until.pop(command_id, None)
            self.on_lost(lost)
        canceled = {c for c, state in still.items() if state is CommandState.CANCELING}
        if canceled:
            self.on_canceled(canceled)

    async def run(self) -> None:
        """Renew every ``renew_every`` seconds, for ever; an outage only skips a round."""
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                await self.renew()
            except StoreUnavailable as error:
                log.warning("cannot renew command leases (the datastore is unavailable): %s", error)
