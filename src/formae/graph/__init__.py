"""The dependency graph of a plan, a running command or the inventory, and its drawings.

Why a package of its own: ``formae graph`` (DOT, and SVG or PNG through Graphviz) and the web
console (an inline SVG it recolours live) draw the same graph with the same colours. The graph
(``model``, ``build``, ``view``) and its DOT and SVG texts are pure functions of what the agent
reports; only ``render`` runs a program (Graphviz's ``dot``). It depends on nothing of formae but
``formae.model`` (import-linter keeps it so).
"""

from formae.graph.build import Held, Step, command_graph, inventory_graph, plan_graph
from formae.graph.dot import to_dot
from formae.graph.model import PALETTE, Colours, Edge, Graph, Mark, Node
from formae.graph.render import INSTALL_HINT, Format, RenderError, render
from formae.graph.svg import mark_class, style_sheet, to_svg
from formae.graph.view import COLLAPSE_ABOVE, Box, Link, View, view

__all__ = [
    "COLLAPSE_ABOVE",
    "INSTALL_HINT",
    "PALETTE",
    "Box",
    "Colours",
    "Edge",
    "Format",
    "Graph",
    "Held",
    "Link",
    "Mark",
    "Node",
    "RenderError",
    "Step",
    "View",
    "command_graph",
    "inventory_graph",
    "mark_class",
    "plan_graph",
    "render",
    "style_sheet",
    "to_dot",
    "to_svg",
    "view",
]
