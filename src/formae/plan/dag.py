"""Run a changeset in dependency order: which updates may start, and what a failure takes down.

The DAG is checked before anything runs (unknown dependencies, cycles), because finding a
cycle halfway through an apply would leave the user's infrastructure half changed. Execution
bookkeeping is O(V+E) over a whole run: each node keeps a count of the dependencies it still
waits on, and each edge is followed once when its dependency succeeds or fails, so a
10,000-resource changeset costs no more than the transport that carries it.

Each node's life is ``NodeState`` with the transitions in ``_TRANSITIONS``::

    PENDING ──▶ RUNNING ──▶ SUCCEEDED
       │           └──────▶ FAILED
       ├──────────────────▶ FAILED     (a dependency failed: DependencyFailure)
       └──────────────────▶ CANCELED   (the command was canceled before it started)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum

from formae.plan.changeset import Changeset, PlannedUpdate


class NodeState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


_TRANSITIONS: dict[NodeState, frozenset[NodeState]] = {
    NodeState.PENDING: frozenset({NodeState.RUNNING, NodeState.FAILED, NodeState.CANCELED}),
    NodeState.RUNNING: frozenset({NodeState.SUCCEEDED, NodeState.FAILED}),
    NodeState.SUCCEEDED: frozenset(),
    NodeState.FAILED: frozenset(),
    NodeState.CANCELED: frozenset(),
}


class DagError(Exception):
    """A changeset that cannot be run, or a call that breaks the order of execution."""


class CycleError(DagError):
    """Updates that wait on each other; ``cycle`` lists their ids, the first repeated at the end."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(f"dependency cycle: {' -> '.join(cycle)}")


@dataclass(frozen=True, slots=True)
class DependencyFailure:
    """Why ``update_id`` failed without running: ``failed_dependency`` failed first."""

    update_id: str
    failed_dependency: str


class Dag:
    """The execution state of one changeset."""

    def __init__(self, changeset: Changeset) -> None:
        self._updates = _index(changeset.updates)
        self._dependants: dict[str, list[str]] = {id: [] for id in self._updates}
        self._waiting_on: dict[str, int] = {}
        for update in changeset.updates:
            self._link(update)
        _check_acyclic(self._updates, self._dependants, self._waiting_on)
        self._state = dict.fromkeys(self._updates, NodeState.PENDING)
        self._ready = dict.fromkeys(id for id, count in self._waiting_on.items() if count == 0)
        self._fresh = list(self._ready)
        """Ready since the last ``take_ready``: what a runner that starts a few at a time has not seen."""
        self._unfinished = len(self._updates)
        self._causes: dict[str, DependencyFailure] = {}

    def _link(self, update: PlannedUpdate) -> None:
        for dependency in update.depends_on:
            if dependency not in self._updates:
                raise DagError(f"{update.id} depends on {dependency}, which is not in the changeset")
            self._dependants[dependency].append(update.id)
        self._waiting_on[update.id] = len(update.depends_on)

    def __len__(self) -> int:
        return len(self._updates)

    def update(self, id: str) -> PlannedUpdate:
        return self._updates[id]

    def state(self, id: str) -> NodeState:
        return self._state[id]

    def cause(self, id: str) -> DependencyFailure | None:
        """Set when ``id`` failed because a dependency did, not by itself."""
        return self._causes.get(id)

    def ready(self) -> list[PlannedUpdate]:
        """Updates not started whose dependencies all succeeded. Costs O(number ready): start them."""
        return [self._updates[id] for id in self._ready]

    def take_ready(self) -> list[PlannedUpdate]:
        """The updates that became ready since the last call and are still pending: O(those).

        For a runner that starts ready updates a few at a time, keeping the rest itself: asking
        ``ready()`` after each completion would cost O(all ready) each time.
        """
        fresh, self._fresh = self._fresh, []
        return [self._updates[id] for id in fresh if self._state[id] is NodeState.PENDING]

    def is_done(self) -> bool:
        """Nothing is running and nothing more can start."""
        return self._unfinished == 0

    def mark_started(self, id: str) -> None:
        if id not in self._ready:
            raise DagError(f"{id} is not ready to start (state {self._state[id]})")
        self._move(id, NodeState.RUNNING)

    def mark_succeeded(self, id: str) -> None:
        self._move(id, NodeState.SUCCEEDED)
        for dependant in self._dependants[id]:
            self._waiting_on[dependant] -= 1
            if self._waiting_on[dependant] == 0 and self._state[dependant] is NodeState.PENDING:
                self._ready[dependant] = None
                self._fresh.append(dependant)

    def mark_failed(self, id: str) -> list[str]:
        """Fail ``id`` and every update that depends on it, directly or not; returns the latter's ids."""
        self._move(id, NodeState.FAILED)
        failed: list[str] = []
        stack = [id]
        while stack:
            for dependant in self._dependants[stack.pop()]:
                if self._state[dependant] is NodeState.PENDING:
                    self._move(dependant, NodeState.FAILED)
                    self._causes[dependant] = DependencyFailure(dependant, id)
                    failed.append(dependant)
                    stack.append(dependant)
        return failed

    def mark_canceled_pending(self, keep: Collection[str] = ()) -> list[str]:
        """Cancel every update not yet started but those in ``keep``; running ones are left to finish.

        Returns the canceled ids.
        """
        pending = [id for id, state in self._state.items() if state is NodeState.PENDING and id not in keep]
        for id in pending:
            self._move(id, NodeState.CANCELED)
        return pending

    def mark_canceled(self, id: str) -> None:
        """Cancel one update that has not started."""
        self._move(id, NodeState.CANCELED)

    def _move(self, id: str, to: NodeState) -> None:
        state = self._state[id]
        if to not in _TRANSITIONS[state]:
            raise DagError(f"{id} cannot go from {state} to {to}")
        self._state[id] = to
        if state is NodeState.PENDING:
            self._ready.pop(id, None)
        if not _TRANSITIONS[to]:
            self._unfinished -= 1


def _index(updates: Iterable[PlannedUpdate]) -> dict[str, PlannedUpdate]:
    index: dict[str, PlannedUpdate] = {}
    for update in updates:
        if update.id in index:
            raise DagError(f"two updates have the id {update.id}")
        index[update.id] = update
    return index


def _check_acyclic(
    updates: dict[str, PlannedUpdate], dependants: dict[str, list[str]], waiting_on: dict[str, int]
) -> None:
    """Kahn's algorithm; whatever it cannot order lies on or behind a cycle."""
    remaining = dict(waiting_on)
    free = [id for id, count in remaining.items() if count == 0]
    while free:
        id = free.pop()
        del remaining[id]
        for dependant in dependants[id]:
            remaining[dependant] -= 1
            if remaining[dependant] == 0:
                free.append(dependant)
    if remaining:
        raise CycleError(_a_cycle(updates, remaining.keys()))


def _a_cycle(updates: dict[str, PlannedUpdate], stuck_ids: Iterable[str]) -> list[str]:
    """Each stuck update waits on another stuck one, so following those waits must come round."""
    stuck = set(stuck_ids)
    path: list[str] = []
    position: dict[str, int] = {}
    id = min(stuck)
    while id not in position:
        position[id] = len(path)
        path.append(id)
        id = min(dependency for dependency in updates[id].depends_on if dependency in stuck)
    return [*path[position[id] :], id]
