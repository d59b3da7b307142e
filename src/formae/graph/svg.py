"""A :class:`View` as an inline SVG with a layout of our own: no Graphviz in the agent.

The console draws a command's DAG inside its page and recolours it as the command runs, so each
box is a ``<g>`` whose class names its mark (``m-success``) and whose ``data-key`` names the
resource; the page's script changes the class. The layout is layered: a box sits one column
right of the rightmost box it needs, and each column is ordered by where the boxes it needs sit
(one barycentre sweep), which keeps the crossings of typical plans few. Text is escaped; long
texts are cut with an ellipsis, their whole text in the box's ``<title>``.
"""

from __future__ import annotations

from collections import defaultdict
from xml.sax.saxutils import escape, quoteattr

from formae.graph.model import PALETTE, Mark
from formae.graph.view import Box, View

WIDTH, HEIGHT, COLUMN_GAP, ROW_GAP, MARGIN = 200, 70, 60, 14, 8
_CUT = 30


def mark_class(mark: Mark) -> str:
    return "m-" + mark.name.lower()


def style_sheet() -> str:
    """The marks' colours as CSS rules, shared by every SVG and the page's legend."""
    rules = []
    for mark, colours in PALETTE.items():
        dash = " stroke-dasharray: 5 3;" if colours.dashed else ""
        rules.append(f".{mark_class(mark)} rect {{ fill: {colours.fill}; stroke: {colours.line};{dash} }}")
    return "\n".join(rules)


def to_svg(view: View) -> str:
    columns = _columns(view)
    place = {box.id: (c, r) for c, column in enumerate(columns) for r, box in enumerate(column)}
    width = MARGIN * 2 + len(columns) * (WIDTH + COLUMN_GAP) - COLUMN_GAP if columns else MARGIN * 2
    rows = max((len(c) for c in columns), default=0)
    height = MARGIN * 2 + rows * (HEIGHT + ROW_GAP) - (ROW_GAP if rows else 0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" role="img" aria-label={quoteattr(_summary(view))}>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7"'
        ' orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
    ]
    parts.extend(_edge(place[link.source], place[link.target]) for link in view.links)
    parts.extend(_box(box, *place[box.id]) for column in columns for box in column)
    parts.append("</svg>")
    return "\n".join(parts)


def _summary(view: View) -> str:
    count = sum(b.members for b in view.boxes)
    return f"{view.title + ': ' if view.title else ''}dependency graph of {count} resources"


def _columns(view: View) -> list[list[Box]]:
    """Boxes by layer, each layer ordered by the mean row of the boxes it needs."""
    needs: dict[str, list[str]] = defaultdict(list)
    for link in view.links:
        needs[link.target].append(link.source)
    order = {box.id: i for i, box in enumerate(view.boxes)}
    layer: dict[str, int] = {}
    for box in _topological(view):
        layer[box.id] = 1 + max((layer.get(n, -1) for n in needs[box.id]), default=-1)
    columns: list[list[Box]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for box in view.boxes:
        columns[layer[box.id]].append(box)
    row: dict[str, float] = {}
    for column in columns:
        column.sort(key=lambda b: (_mean(row, needs[b.id], order[b.id]), order[b.id]))
        row.update((b.id, float(r)) for r, b in enumerate(column))
    return columns


def _mean(row: dict[str, float], needed: list[str], fallback: int) -> float:
    placed = [row[n] for n in needed if n in row]
    return sum(placed) / len(placed) if placed else float(fallback)


def _topological(view: View) -> list[Box]:
    """Kahn's order; boxes on a cycle (which a plan never has) come last, in their own order."""
    incoming = {box.id: 0 for box in view.boxes}
    out: dict[str, list[str]] = defaultdict(list)
    for link in view.links:
        incoming[link.target] += 1
        out[link.source].append(link.target)
    by_id = {box.id: box for box in view.boxes}
    ready = [box.id for box in view.boxes if incoming[box.id] == 0]
    ordered: list[Box] = []
    while ready:
        current = ready.pop(0)
        ordered.append(by_id[current])
        for nxt in out[current]:
            incoming[nxt] -= 1
            if incoming[nxt] == 0:
                ready.append(nxt)
    seen = {b.id for b in ordered}
    return ordered + [b for b in view.boxes if b.id not in seen]


def _xy(column: int, row: int) -> tuple[int, int]:
    return MARGIN + column * (WIDTH + COLUMN_GAP), MARGIN + row * (HEIGHT + ROW_GAP)


def _edge(source: tuple[int, int], target: tuple[int, int]) -> str:
    (x1, y1), (x2, y2) = _xy(*source), _xy(*target)
    x1, y1, y2 = x1 + WIDTH, y1 + HEIGHT // 2, y2 + HEIGHT // 2
    bend = max(COLUMN_GAP // 2, (x2 - x1) // 2)
    path = f"M {x1} {y1} C {x1 + bend} {y1}, {x2 - bend} {y2}, {x2} {y2}"
    return f'<path class="edge" d="{path}" fill="none" stroke="#555" marker-end="url(#arrow)"/>'


def _box(box: Box, column: int, row: int) -> str:
    x, y = _xy(column, row)
    title = " · ".join((*box.lines, str(box.mark)))
    texts = [
        _text(x + 10, y + 17, box.lines[0], "label"),
        _text(x + 10, y + 32, box.lines[1] if len(box.lines) > 1 else "", "type"),
        _text(x + 10, y + 46, box.lines[2] if len(box.lines) > 2 else "", "native"),
        _text(x + 10, y + 61, str(box.mark), "mark"),
    ]
    return (
        f'<g class="box {mark_class(box.mark)}" data-key={quoteattr(box.id)} tabindex="0"'
        f" aria-label={quoteattr(title)}><title>{escape(title)}</title>"
        f'<rect x="{x}" y="{y}" width="{WIDTH}" height="{HEIGHT}" rx="6" stroke-width="1.5"/>'
        + "".join(texts)
        + "</g>"
    )


def _text(x: int, y: int, text: str, role: str) -> str:
    shown = text if len(text) <= _CUT else text[: _CUT - 1] + "…"
    return f'<text x="{x}" y="{y}" class="{role}">{escape(shown)}</text>'
