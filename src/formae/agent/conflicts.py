"""Claims: which running work may change which stacks and resources, so that two never overlap.

Two commands planning the same stack at once each read an inventory that lacks the other's
creates, and both create: duplicated, orphaned infrastructure. So everything that changes
resources first *claims* what it will touch — a ``Scope`` of whole stacks and single resources —
and holds the claim until it has stored its end. Overlapping claims are refused (or queued).

Who calls what::

    claims = Claims()                                   # one per agent, passed in (no global)

    # a command (CommandRunner), before it reads the inventory it plans from
    claim = claims.try_claim(Claimant.command(id), Scope.of(stacks={"net"}))   # or ConflictError
    claim = claims.enqueue(Claimant.command(id), scope)   # --wait: a place in the queue now,
    await claim.wait()                                      # granted when the holders release
    ...; claim.release()

    # the synchronizer / discovery (short background work on single resources)
    if claims.changing(key) is None: ...                # is a running command changing it?
    with claims.try_claim(Claimant.sync("drift-check"), Scope.of(resources=keys)) as claim: ...
    claim = await claims.claim(Claimant.discovery(run_id), scope)   # waits; never refused

Rules (all decided on the event loop, without awaiting, so a check and its claim are atomic):

- Two scopes overlap when they share a stack, share a resource, or one holds the stack of a
  resource the other names.
- Claims are granted in the order they were asked for: a queued claim blocks every later
  overlapping one, so a command queued with ``--wait`` is not overtaken.
- ``try_claim`` refuses at once if anything overlapping is held *or queued*; ``ConflictError``
  names the holders ("command 01H… is changing stack 'net'").
- ``claim`` queues instead and returns once every earlier overlapping claim is released; its
  ``on_queued`` callback is told whom it waits for, so the wait can be shown to the user.
- Background claimants (``SYNC``, ``DISCOVERY``) are brief: a command whose only conflicts are
  background claims should wait for them (``Claims.blocking`` tells them apart).

These claims live in this agent's memory and order its own work (commands, sync, discovery). A
command's claim is *also* stored with the command (``agent/stored_claims.py``): that copy is what
refuses or queues a command overlapping one that any agent sharing the store runs. A command
takes its claim here only once the store has granted it, so the commands' claims held here never
overlap each other; they wait only for this agent's brief background work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType

from formae.model import ResourceKey
from formae.store import ClaimPart, ClaimPartKind


class ClaimKind(StrEnum):
    COMMAND = "command"
    SYNC = "sync"
    DISCOVERY = "discovery"

    @property
    def background(self) -> bool:
        """Brief work the agent does on its own: others wait for it rather than being refused."""
        return self is not ClaimKind.COMMAND


@dataclass(frozen=True, slots=True)
class Claimant:
    """Who holds a claim: what the user reads in a conflict ("command 01H…")."""

    kind: ClaimKind
    id: str

    @classmethod
    def command(cls, command_id: str) -> Claimant:
        return cls(ClaimKind.COMMAND, command_id)

    @classmethod
    def sync(cls, run_id: str) -> Claimant:
        return cls(ClaimKind.SYNC, run_id)

    @classmethod
    def discovery(cls, run_id: str) -> Claimant:
        return cls(ClaimKind.DISCOVERY, run_id)

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


@dataclass(frozen=True, slots=True)
class Scope:
    """What a piece of work may change: whole stacks, and single resources (in any stack)."""

    stacks: frozenset[str] = frozenset()
    resources: frozenset[ResourceKey] = frozenset()
    every_stack: bool = False
    """Any stack at all: a destroy by a query that names no stack may reach whatever exists by then."""

    @classmethod
    def of(cls, *, stacks: Iterable[str] = (), resources: Iterable[ResourceKey] = ()) -> Scope:
        return cls(frozenset(stacks), frozenset(resources))

    @classmethod
    def everything(cls) -> Scope:
        return cls(every_stack=True)

    def __or__(self, other: Scope) -> Scope:
        return Scope(
            self.stacks | other.stacks,
            self.resources | other.resources,
            self.every_stack or other.every_stack,
        )

    def parts(self) -> list[ClaimPart]:
        """The scope as the store keeps it: one part per stack and per resource."""
        if self.every_stack:
            return [ClaimPart(ClaimPartKind.EVERYTHING)]
        stacks = [ClaimPart(ClaimPartKind.STACK, stack) for stack in sorted(self.stacks)]
        return stacks + [ClaimPart(ClaimPartKind.RESOURCE, *key) for key in sorted(self.resources)]

    @classmethod
    def from_parts(cls, parts: Iterable[ClaimPart]) -> Scope:
        scope = cls()
        for part in parts:
            if part.kind is ClaimPartKind.EVERYTHING:
                scope = scope | cls.everything()
            elif part.kind is ClaimPartKind.STACK and part.stack is not None:
                scope = scope | cls.of(stacks=[part.stack])
            elif part.stack is not None and part.type is not None and part.label is not None:
                scope = scope | cls.of(resources=[ResourceKey(part.stack, part.type, part.label)])
        return scope

    def covers(self, key: ResourceKey) -> bool:
        return self.every_stack or key.stack in self.stacks or key in self.resources

    def overlap(self, other: Scope) -> list[str]:
        """What both may change, in words ("stack 'net'", "resource net/T::S::K/b"); [] if nothing."""
        if (self.every_stack and other) or (other.every_stack and self):
            return ["every stack"]
        shared = [f"stack {stack!r}" for stack in sorted(self.stacks & other.stacks)]
        keys = {k for k in self.resources if other.covers(k)} | {k for k in other.resources if self.covers(k)}
        return shared + [f"resource {k.stack}/{k.type}/{k.label}" for k in sorted(keys)]

    def __bool__(self) -> bool:
        return bool(self.every_stack or self.stacks or self.resources)


class ConflictError(Exception):
    """The scope overlaps work that is running (or queued); ``holders`` name it."""

    def __init__(self, claimant: Claimant, conflicts: list[tuple[Claimant, list[str]]]) -> None:
        self.claimant = claimant
        self.holders = [holder for holder, _ in conflicts]
        super().__init__(
            "; ".join(f"{holder} is changing {', '.join(what[:3])}" for holder, what in conflicts)
        )


@dataclass(eq=False)
class Claim:
    """A granted claim; release it (or leave its ``with`` block) once the work's end is stored."""

    claimant: Claimant
    scope: Scope
    _claims: Claims
    _granted: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def granted(self) -> bool:
        return self._granted.is_set()

    async def wait(self) -> None:
        """Until granted; cancelling the wait withdraws the claim."""
        try:
            await self._granted.wait()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Idempotent; wakes the claims queued behind this one."""
        self._claims._release(self)

    def widen(self, scope: Scope) -> None:
        """Add to a held claim, atomically; ConflictError (and nothing added) if that overlaps others."""
        self._claims._widen(self, scope)

    def __enter__(self) -> Claim:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


OnQueued = Callable[[list[Claimant]], Awaitable[None]]


class Claims:
    """Every claim of this agent, held or queued, in the order they were asked for."""

    def __init__(self) -> None:
        self._entries: list[Claim] = []

    # -- questions ---------------------------------------------------------------------------

    def changing(self, key: ResourceKey) -> Claimant | None:
        """Who may be changing ``key`` right now (a held claim covering it), or None."""
        return next((c.claimant for c in self._entries if c.granted and c.scope.covers(key)), None)

    def holders(self, scope: Scope) -> list[Claimant]:
        """Everyone, held or queued, whose claim overlaps ``scope``."""
        return [claimant for claimant, _ in self._conflicts(scope, self._entries)]

    def held(self) -> list[Claim]:
        return [c for c in self._entries if c.granted]

    @staticmethod
    def blocking(holders: Iterable[Claimant]) -> list[Claimant]:
        """The holders a command is refused for; the others are brief background work to wait for."""
        return [h for h in holders if not h.kind.background]

    # -- claiming ----------------------------------------------------------------------------

    def try_claim(self, claimant: Claimant, scope: Scope) -> Claim:
        """Grant ``scope`` now, or raise ConflictError naming whoever holds or awaits an overlap."""
        conflicts = self._conflicts(scope, self._entries)
        if conflicts:
            raise ConflictError(claimant, conflicts)
        return self.enqueue(claimant, scope)

    async def claim(self, claimant: Claimant, scope: Scope, on_queued: OnQueued | None = None) -> Claim:
        """Grant ``scope`` once every earlier overlapping claim is released; queue meanwhile.

        Cancelling the wait withdraws the claim, so nothing is left queued behind a caller that left.
        """
        claim = self.enqueue(claimant, scope)
        if not claim.granted and on_queued is not None:
            await on_queued(self.holders_before(claim))
        await claim.wait()
        return claim

    def enqueue(self, claimant: Claimant, scope: Scope) -> Claim:
        """Take a place in the queue now (granted at once if nothing overlaps); ``await claim.wait()``."""
        claim = Claim(claimant, scope, self)
        if not self._conflicts(scope, self._entries):
            claim._granted.set()
        self._entries.append(claim)
        return claim

    def holders_before(self, claim: Claim) -> list[Claimant]:
        """Whom a queued ``claim`` waits for."""
        earlier = self._entries[: self._entries.index(claim)] if claim in self._entries else []
        return [claimant for claimant, _ in self._conflicts(claim.scope, earlier)]

    # -- internals ---------------------------------------------------------------------------

    def _release(self, claim: Claim) -> None:
        if claim not in self._entries:
            return
        self._entries.remove(claim)
        for index, waiting in enumerate(self._entries):
            if not waiting.granted and not self._conflicts(waiting.scope, self._entries[:index]):
                waiting._granted.set()

    def _widen(self, claim: Claim, scope: Scope) -> None:
        others = [c for c in self._entries if c is not claim]
        conflicts = self._conflicts(scope, others)
        if conflicts:
            raise ConflictError(claim.claimant, conflicts)
        claim.scope = claim.scope | scope

    @staticmethod
    def _conflicts(scope: Scope, entries: Iterable[Claim]) -> list[tuple[Claimant, list[str]]]:
        found = []
        for entry in entries:
            what = scope.overlap(entry.scope)
            if what:
                found.append((entry.claimant, what))
        return found
