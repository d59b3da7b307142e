"""Graphs from what the agent already says: a plan or a command's updates, or the inventory.

A plan (``apply --simulate``) and a command are lists of :class:`Step`: one operation on one
resource and the steps it waits for. The two halves of a replace (a delete, then a create of the
same key) become one ``replace`` node. A step's wait is turned back into the reference it came
from: a create or update waits for what it refers to; a delete waits for the deletes (and the
updates) of what referred to it, so there the arrow is the other way round.

An inventory is a list of :class:`Held` resources with the keys their forma refers to and their
drift, as ``sync`` last saw it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from formae.graph.model import Edge, Graph, Mark, Node
from formae.model import ResourceKey

_OPERATION_MARKS = {"create": Mark.CREATE, "update": Mark.UPDATE, "delete": Mark.DELETE, "read": Mark.READ}
_STATE_MARKS = {
    "Pending": Mark.PENDING,
    "Dispatching": Mark.RUNNING,
    "InProgress": Mark.RUNNING,
    "WaitingRetry": Mark.RUNNING,
    "Success": Mark.SUCCESS,
    "Failed": Mark.FAILED,
    "Canceled": Mark.CANCELED,
}
_STATE_ORDER = (Mark.FAILED, Mark.RUNNING, Mark.CANCELED, Mark.PENDING, Mark.SUCCESS)
"""The mark of a replace whose halves differ: the first of its halves' marks in this order."""
_DRIFT_MARKS = {"changed": Mark.DRIFTED, "deleted": Mark.GONE}


@dataclass(frozen=True, slots=True)
class Step:
    """One planned or running resource operation, as the API and the store describe it."""

    id: str
    operation: str
    """create, update, delete or read"""
    key: ResourceKey
    depends_on: frozenset[str] = frozenset()
    replace: bool = False
    adopt: bool = False
    native_id: str | None = None
    state: str | None = None
    """The update's state (Pending, InProgress, Success, ...) when it belongs to a command."""


@dataclass(frozen=True, slots=True)
class Held:
    """A resource in the inventory, the keys it refers to, and its drift (changed, deleted or None)."""

    key: ResourceKey
    native_id: str | None
    refers_to: tuple[ResourceKey, ...] = ()
    drift: str | None = None


def plan_graph(steps: Sequence[Step], title: str = "") -> Graph:
    """Nodes coloured by what is planned: create, update, replace, delete, adopt or read."""
    return Graph.of([_planned_node(group) for group in _by_key(steps).values()], _edges(steps), title)


def command_graph(steps: Sequence[Step], title: str = "") -> Graph:
    """Nodes coloured by where each resource's operation has got to."""
    return Graph.of([_state_node(group) for group in _by_key(steps).values()], _edges(steps), title)


def inventory_graph(held: Iterable[Held], title: str = "") -> Graph:
    """Nodes coloured by drift; edges from the references in each resource's forma."""
    resources = list(held)
    nodes = [Node(h.key, _DRIFT_MARKS.get(h.drift or "", Mark.IN_SYNC), h.native_id) for h in resources]
    edges = [Edge(needed, h.key) for h in resources for needed in h.refers_to]
    return Graph.of(nodes, edges, title)


def _by_key(steps: Sequence[Step]) -> dict[ResourceKey, list[Step]]:
    grouped: dict[ResourceKey, list[Step]] = defaultdict(list)
    for step in steps:
        grouped[step.key].append(step)
    return grouped


def _native_id(group: list[Step]) -> str | None:
    return next((s.native_id for s in reversed(group) if s.native_id), None)


def _planned_node(group: list[Step]) -> Node:
    first = group[0]
    if any(s.replace for s in group):
        mark = Mark.REPLACE
    elif first.adopt:
        mark = Mark.ADOPT
    else:
        mark = _OPERATION_MARKS.get(first.operation, Mark.UPDATE)
    return Node(first.key, mark, _native_id(group))


def _state_node(group: list[Step]) -> Node:
    marks = {_STATE_MARKS.get(s.state or "Pending", Mark.PENDING) for s in group}
    mark = next(m for m in _STATE_ORDER if m in marks)
    return Node(group[0].key, mark, _native_id(group))


def _edges(steps: Sequence[Step]) -> list[Edge]:
    """The reference behind each wait: ``needed`` is the resource referred to."""
    by_id = {s.id: s for s in steps}
    edges = []
    for step in steps:
        for waited in (by_id[d] for d in step.depends_on if d in by_id):
            if step.operation == "delete":  # deleted after what referred to it
                edges.append(Edge(step.key, waited.key))
            else:
                edges.append(Edge(waited.key, step.key))
    return edges
