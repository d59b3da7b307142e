"""What is drawn: boxes grouped by stack and type, a group past a size folded into one box.

A graph of thousands of resources cannot be read box by box. Boxes sit in clusters, one per
stack holding one per resource type; when a (stack, type) group has more than
``collapse_above`` resources it becomes a single box that counts them by mark, and the edges of
its members become edges of the group, each counted once per pair of boxes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from formae.graph.model import Graph, Mark, Node
from formae.graph.options import COLLAPSE_ABOVE
from formae.model import ResourceKey


@dataclass(frozen=True, slots=True)
class Box:
    id: str
    stack: str
    type: str
    mark: Mark
    """A folded group takes its most common mark."""
    lines: tuple[str, ...]
    """Label (or count), type, native id (or the count of each mark)."""
    members: int = 1
    counts: tuple[tuple[Mark, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Link:
    source: str
    target: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class View:
    title: str
    boxes: tuple[Box, ...]
    links: tuple[Link, ...]

    def clusters(self) -> dict[str, dict[str, list[Box]]]:
        """stack → type → boxes, in the boxes' order."""
        grouped: dict[str, dict[str, list[Box]]] = defaultdict(lambda: defaultdict(list))
        for box in self.boxes:
            grouped[box.stack][box.type].append(box)
        return grouped

    def marks(self) -> list[Mark]:
        """The marks shown, in the palette's order (for a legend)."""
        shown = {m for b in self.boxes for m, _ in (b.counts or ((b.mark, 1),))}
        return [m for m in Mark if m in shown]


def node_id(key: ResourceKey) -> str:
    return str(key)


def group_id(stack: str, type_: str) -> str:
    return f"group:{stack}/{type_}"


def view(graph: Graph, collapse_above: int = COLLAPSE_ABOVE) -> View:
    groups: dict[tuple[str, str], list[Node]] = defaultdict(list)
    for node in graph.nodes:
        groups[(node.key.stack, node.key.type)].append(node)
    boxes: list[Box] = []
    box_of: dict[ResourceKey, str] = {}
    for (stack, type_), members in groups.items():
        if len(members) > collapse_above:
            boxes.append(_folded(stack, type_, members))
            box_of.update((n.key, boxes[-1].id) for n in members)
        else:
            boxes.extend(_box(n) for n in members)
            box_of.update((n.key, node_id(n.key)) for n in members)
    pairs = Counter((box_of[e.needed], box_of[e.needed_by]) for e in graph.edges)
    links = tuple(Link(s, t, n) for (s, t), n in sorted(pairs.items()) if s != t)
    return View(graph.title, tuple(boxes), links)


def _box(node: Node) -> Box:
    lines = (node.key.label, node.key.type, *((node.native_id,) if node.native_id else ()))
    return Box(node_id(node.key), node.key.stack, node.key.type, node.mark, lines)


def _folded(stack: str, type_: str, members: list[Node]) -> Box:
    counts = Counter(n.mark for n in members).most_common()
    summary = ", ".join(f"{n} {mark}" for mark, n in counts)
    lines = (f"{len(members)} resources", type_, summary)
    return Box(group_id(stack, type_), stack, type_, counts[0][0], lines, len(members), tuple(counts))
