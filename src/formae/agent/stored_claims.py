"""Claims between agents: a command's claim is stored with it, checked against every agent's.

``Claims`` (``agent/conflicts.py``) lives in one agent's memory; two agents sharing a PostgreSQL
store would each admit a command on stack ``net`` and both plan from the same inventory. So the
claim of a command is written in the very transaction that creates the command, after every live
claim (of commands not yet final, whichever agent runs them) was read under the claims lock: an
overlap refuses the command (409) or, with ``--wait``, stores it ``Queued`` behind the holders.

A command is stored ``Queued`` either way and planned once granted: at once when nothing
overlapped (its message says ``planning``), or when every earlier overlapping claim has ended
(polled, as the holder may be another agent's). A claim ends with its command: only claims of
commands in an unfinished state count, so nothing is released by hand and a dead agent's claim
lives exactly as long as its command, which another agent takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from formae.agent.conflicts import Claimant, ConflictError, Scope
from formae.store import Command, CommandState, Datastore, StoredClaim

log = logging.getLogger("formae.agent.stored_claims")

Conflicts = list[tuple[Claimant, list[str]]]
PLANNING = "planning"
"""The message of a command whose claim was granted at once and whose plan is being made."""


def overlapping(scope: Scope, live: list[StoredClaim], *, of: str | None = None) -> Conflicts:
    """The live claims ``scope`` overlaps, in claim order; ``of``'s own and later ones left out."""
    mine = next((c.position for c in live if c.command_id == of), None)
    found: Conflicts = []
    for claim in live:
        if claim.command_id == of or (mine is not None and claim.position > mine):
            continue
        what = scope.overlap(Scope.from_parts(claim.parts))
        if what:
            found.append((Claimant.command(claim.command_id), what))
    return found


class StoredClaims:
    def __init__(self, store: Datastore, *, poll: float = 0.25) -> None:
        self._store = store
        self._poll = poll

    async def create(
        self, command: Command, scope: Scope, *, queue: bool
    ) -> tuple[Command | None, Conflicts]:
        """Store ``command`` (as Queued) with its claim unless it overlaps and may not ``queue``.

        Returns the stored command (None: nothing stored) and the claims it overlapped.
        """
        conflicts: Conflicts = []

        def admit(live: list[StoredClaim]) -> Command | None:
            conflicts[:] = overlapping(scope, live)
            if conflicts and not queue:
                return None
            behind = ", ".join(holder.id for holder, _ in conflicts)
            message = f"queued behind {behind}" if conflicts else PLANNING
            return replace(command, state=CommandState.QUEUED, message=message)

        stored = await self._store.create_claimed_command(scope.parts(), admit)
        return stored, conflicts

    async def widen(self, command_id: str, scope: Scope) -> None:
        """Add ``scope`` to a command's stored claim; ConflictError (nothing added) if another overlaps."""
        conflicts: Conflicts = []

        def admit(live: list[StoredClaim]) -> bool:
            conflicts[:] = [c for c in overlapping(scope, live) if c[0].id != command_id]
            return not conflicts

        if not await self._store.widen_claim(command_id, scope.parts(), admit):
            raise ConflictError(Claimant.command(command_id), conflicts)

    async def ensure(self, command_id: str, scope: Scope) -> None:
        """A command stored before claims were (an upgraded store) gets its claim when resumed."""
        await self._store.ensure_claim(command_id, scope.parts())

    async def holders(self, command_id: str, scope: Scope) -> Conflicts:
        """The earlier live claims a command's claim waits for; [] once it is granted."""
        return overlapping(scope, await self._store.live_claims(), of=command_id)

    async def wait_granted(self, command_id: str, scope: Scope, canceled: asyncio.Event) -> bool:
        """Until no earlier overlapping claim is live; False if ``canceled`` is set first."""
        while not canceled.is_set():
            if not await self.holders(command_id, scope):
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(canceled.wait(), self._poll)
        return False
