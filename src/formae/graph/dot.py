"""A :class:`View` as Graphviz DOT text: clusters per stack and type, colours, a legend.

Readable as it comes out of ``dot``: left to right in the order the work flows, each box naming
its label, type, native id and mark in words (colour is never the only sign), and a legend of
the marks used. Every string is quoted and escaped, so a label holding quotes or backslashes
cannot break the file.
"""

from __future__ import annotations

from formae.graph.model import PALETTE, Mark
from formae.graph.view import Box, View

_FONT = "Helvetica"


def to_dot(view: View) -> str:
    lines = [
        "digraph formae {",
        f"  graph [rankdir=LR, fontname={_q(_FONT)}, fontsize=12, labelloc=t, label={_q(view.title)},"
        " nodesep=0.25, ranksep=0.6];",
        f'  node [shape=box, style="rounded,filled", fontname={_q(_FONT)}, fontsize=10, margin="0.15,0.06"];',
        '  edge [color="#555555", arrowsize=0.7];',
    ]
    for s, (stack, types) in enumerate(view.clusters().items()):
        lines.append(f"  subgraph {_q(f'cluster_{s}')} {{")
        lines.append(f'    label={_q(f"stack {stack}")}; style="rounded"; color="#9e9e9e";')
        for t, (type_, boxes) in enumerate(types.items()):
            lines.append(f"    subgraph {_q(f'cluster_{s}_{t}')} {{")
            lines.append(f'      label={_q(type_)}; style="rounded,dashed"; color="#bdbdbd";')
            lines.extend(f"      {_node(box)}" for box in boxes)
            lines.append("    }")
        lines.append("  }")
    for link in view.links:
        extra = f" [label={_q(f'{link.count} references')}, penwidth=2]" if link.count > 1 else ""
        lines.append(f"  {_q(link.source)} -> {_q(link.target)}{extra};")
    lines.extend(_legend(view.marks()))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node(box: Box) -> str:
    colours = PALETTE[box.mark]
    text = "\n".join((*box.lines, f"[{box.mark}]" if box.members == 1 else ""))
    style = "rounded,filled,dashed" if colours.dashed else "rounded,filled"
    width = ", penwidth=2" if box.members > 1 else ""
    return (
        f"{_q(box.id)} [label={_q(text.rstrip())}, fillcolor={_q(colours.fill)}, color={_q(colours.line)},"
        f" style={_q(style)}, tooltip={_q(box.id)}{width}];"
    )


def _legend(marks: list[Mark]) -> list[str]:
    if not marks:
        return []
    lines = ["  subgraph cluster_legend {", '    label="legend"; style="rounded"; color="#bdbdbd";']
    for mark in marks:
        colours = PALETTE[mark]
        style = "rounded,filled,dashed" if colours.dashed else "rounded,filled"
        lines.append(
            f"    {_q(f'legend:{mark}')} [label={_q(str(mark))}, fillcolor={_q(colours.fill)},"
            f" color={_q(colours.line)}, style={_q(style)}];"
        )
    lines.append("  }")
    return lines


def _q(text: str) -> str:
    """A DOT quoted string: backslashes and quotes escaped, newlines as DOT's centred line break."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r", "").replace("\n", "\\n") + '"'
