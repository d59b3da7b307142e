"""The command state machine: one table of legal moves, one writer per command.

A cancel, a resume and a command's own end used to be ordered by a lock and two flags; now every
change of a command's state is a move checked against ``TRANSITIONS`` and stored as a compare-and-set
(``Datastore.move_command``), so a move that lost a race — a cancel arriving after the end — is
refused by the table instead of overwriting the final state. Within this agent, ``CommandLifecycle``
is the single writer of one running command's state; for a command not running here the API's cancel
uses the same table through ``cancel_stored``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from formae.agent.store_outage import Persist
from formae.store import Command, CommandState, Datastore, Fence, ResourceUpdateRecord

C = CommandState
TRANSITIONS: dict[CommandState, frozenset[CommandState]] = {
    # Queued: waiting for its claim; planned (Pending) when granted, refused (Failed) if the plan is
    C.QUEUED: frozenset({C.PENDING, C.CANCELING, C.CANCELED, C.FAILED}),
    C.PENDING: frozenset({C.IN_PROGRESS, C.CANCELING, C.FAILED}),
    # InProgress -> InProgress: resumed after a restart
    C.IN_PROGRESS: frozenset({C.IN_PROGRESS, C.CANCELING, C.SUCCESS, C.FAILED}),
    # Canceling -> Success: everything had finished before the cancel took effect
    C.CANCELING: frozenset({C.CANCELING, C.CANCELED, C.SUCCESS, C.FAILED}),
    C.SUCCESS: frozenset(),
    C.FAILED: frozenset(),
    C.CANCELED: frozenset(),
}


def predecessors(state: CommandState) -> frozenset[CommandState]:
    """The states a command may be in for a move to ``state`` to be legal."""
    return frozenset(source for source, targets in TRANSITIONS.items() if state in targets)


async def cancel_stored(store: Datastore, command_id: str) -> Command | None:
    """Store Canceling for a command this agent does not run; None if it is unknown or already final."""
    return await store.move_command(command_id, C.CANCELING, "cancel requested", predecessors(C.CANCELING))


class CommandLifecycle:
    """The single writer of one command's state while this agent runs it.

    ``canceled`` is set once Canceling is stored (or found at resume): the executor starts nothing
    new from then on. Moves are serialised, checked against the table from the state last stored,
    and written through ``persist`` (which rides out a datastore outage).
    """

    def __init__(
        self,
        store: Datastore,
        command: Command,
        persist: Persist,
        moved: Callable[[CommandState], None] = lambda _state: None,
    ) -> None:
        self._store = store
        self._moved = moved
        """Told each state this agent stores or finds for the command (the metrics' hook)."""
        self._id = command.id
        self._state = command.state
        self._persist = persist
        self._moving = asyncio.Lock()
        self.canceled = asyncio.Event()
        if command.state is C.CANCELING:
            self.canceled.set()
        self.ended = asyncio.Event()
        self.fence: Fence | None = None
        """The lease this agent executes the command under: a move after a takeover writes nothing."""

    @property
    def state(self) -> CommandState:
        return self._state

    async def move(self, state: CommandState, message: str | None = None) -> bool:
        """Store ``state`` if the table allows it from the current one; False (nothing written) if not."""
        async with self._moving:
            if state not in TRANSITIONS[self._state]:
                return False
            stored = await self._persist(
                lambda: self._store.move_command(
                    self._id, state, message, predecessors(state), fence=self.fence
                )
            )
            if stored is None:  # moved by another writer (a cancel before we ran): the store's state wins
                await self._reload()
                return False
            self._adopt(stored)
            return True

    async def _reload(self) -> None:
        found = await self._persist(lambda: self._store.get_command(self._id, with_forma=False))
        if found is not None:
            self._adopt(found)

    def _adopt(self, stored: Command) -> None:
        self._state = stored.state
        self._moved(stored.state)
        if stored.state is C.CANCELING:
            self.canceled.set()
        if stored.state.is_final:
            self.ended.set()

    async def plan(self, updates: Sequence[ResourceUpdateRecord]) -> bool:
        """Queued -> Pending with the command's updates stored in the same transaction."""
        async with self._moving:
            if self._state is not C.QUEUED:
                return False
            stored = await self._persist(
                lambda: self._store.plan_queued_command(self._id, updates, fence=self.fence)
            )
            if stored is None:
                await self._reload()
                return False
            self._adopt(stored)
            return True

    def canceled_elsewhere(self) -> None:
        """The store says Canceling (a cancel sent to another agent): adopt it, start nothing new."""
        if self._state.is_final:
            return
        if self._state is not C.QUEUED:  # a queued one moves to Canceled from either
            self._state = C.CANCELING
        self.canceled.set()

    async def cancel(self) -> bool:
        return await self.move(C.CANCELING, "cancel requested")
