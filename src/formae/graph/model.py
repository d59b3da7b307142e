"""The dependency graph as plain values: resources, the references between them, what colours them.

A node is one resource; an edge says that one resource refers to another (``needed_by`` holds a
reference to a property of ``needed``), so it points the way the work flows: from the VPC to the
subnet in it. A node's :class:`Mark` says what is planned for it, how it stands against the
cloud, or where its operation has got to; the palette gives each mark its colours, the same in
the DOT file, the console's SVG and their legends.

Pure: nothing here runs a program, reads a file or talks to an agent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from formae.model import ResourceKey


class Mark(StrEnum):
    """What a node's colour says. Plans, inventories and running commands each use a few."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    ADOPT = "adopt"
    READ = "read"
    """An adoption that changes nothing: read to confirm."""
    IN_SYNC = "in sync"
    DRIFTED = "changed in the cloud"
    GONE = "deleted in the cloud"
    OUTSIDE = "outside the selection"
    """Referred to, but not in the graph's query: drawn so that the reference is not lost."""
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class Colours:
    fill: str
    line: str
    dashed: bool = False


PALETTE: dict[Mark, Colours] = {
    Mark.CREATE: Colours("#d7f0d8", "#2e7d32"),
    Mark.UPDATE: Colours("#fff0bf", "#8a6d00"),
    Mark.REPLACE: Colours("#ffdcc4", "#c04a00"),
    Mark.DELETE: Colours("#f9d3d3", "#b71c1c"),
    Mark.ADOPT: Colours("#dbe6ff", "#1f4fb0"),
    Mark.READ: Colours("#ececec", "#616161"),
    Mark.IN_SYNC: Colours("#f4f4f4", "#757575"),
    Mark.DRIFTED: Colours("#ffe2b8", "#b35300"),
    Mark.GONE: Colours("#f9d3d3", "#b71c1c", dashed=True),
    Mark.OUTSIDE: Colours("#ffffff", "#757575", dashed=True),
    Mark.PENDING: Colours("#ececec", "#616161"),
    Mark.RUNNING: Colours("#d2e4ff", "#1457b8"),
    Mark.SUCCESS: Colours("#d7f0d8", "#2e7d32"),
    Mark.FAILED: Colours("#f9d3d3", "#b71c1c"),
    Mark.CANCELED: Colours("#e0e0e0", "#424242", dashed=True),
}
"""Light fills under dark text (contrast above 7:1), and a darker line of the same hue."""


@dataclass(frozen=True, slots=True)
class Node:
    key: ResourceKey
    mark: Mark
    native_id: str | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    """``needed_by`` refers to ``needed``."""

    needed: ResourceKey
    needed_by: ResourceKey


@dataclass(frozen=True, slots=True)
class Graph:
    """Nodes in a stable order (stack, type, label) and edges between them, without duplicates."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    title: str = ""

    @classmethod
    def of(cls, nodes: list[Node], edges: list[Edge], title: str = "") -> Graph:
        """A graph of ``nodes``; edges to keys with no node become :attr:`Mark.OUTSIDE` nodes."""
        known = {n.key: n for n in nodes}
        for edge in edges:
            for key in (edge.needed, edge.needed_by):
                known.setdefault(key, Node(key, Mark.OUTSIDE))
        unique = sorted({e for e in edges if e.needed != e.needed_by}, key=lambda e: (e.needed, e.needed_by))
        ordered = sorted(known.values(), key=lambda n: n.key)
        return cls(tuple(ordered), tuple(unique), title)

    def marks(self) -> Counter[Mark]:
        return Counter(n.mark for n in self.nodes)
