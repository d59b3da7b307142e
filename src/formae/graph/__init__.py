"""The dependency graph of a plan, a running command or the inventory, and its drawings.

Why a package of its own: ``formae graph`` (DOT, and SVG or PNG through Graphviz) and the web
console (an inline SVG it recolours live) draw the same graph with the same colours. The graph
(``model``, ``build``, ``view``) and its DOT and SVG texts are pure functions of what the agent
reports; only ``render`` runs a program (Graphviz's ``dot``). It depends on nothing of formae but
``formae.model`` (import-linter keeps it so).

The graph itself (``model`` and what builds on it, which import ``formae.model`` and so pydantic)
is imported the first time one of its names is asked for (``__getattr__``), all at once; what
``formae graph``'s signature names (``options``) and ``render`` import nothing heavy. Every
``formae`` command reads every signature at start (see ``formae.cli``), so a command that draws
nothing must not pay for the graph.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from formae.graph.options import COLLAPSE_ABOVE, Format
from formae.graph.render import INSTALL_HINT, RenderError, render

if TYPE_CHECKING:
    from formae.graph.build import Held, Step, command_graph, inventory_graph, plan_graph
    from formae.graph.dot import to_dot
    from formae.graph.model import PALETTE, Colours, Edge, Graph, Mark, Node
    from formae.graph.svg import mark_class, style_sheet, to_svg
    from formae.graph.view import Box, Link, View, view

_HOMES = {
    "Box": "view",
    "Colours": "model",
    "Edge": "model",
    "Graph": "model",
    "Held": "build",
    "Link": "view",
    "Mark": "model",
    "Node": "model",
    "PALETTE": "model",
    "Step": "build",
    "View": "view",
    "command_graph": "build",
    "inventory_graph": "build",
    "mark_class": "svg",
    "plan_graph": "build",
    "style_sheet": "svg",
    "to_dot": "dot",
    "to_svg": "svg",
    "view": "view",
}

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


def __getattr__(name: str) -> Any:
    """The graph's names, bound all at once after all their modules are imported.

    All at once because ``view`` names both a module and a function: importing the module makes
    it an attribute here, and only binding the function afterwards gives callers the function.
    """
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    modules = {home: importlib.import_module(f"formae.graph.{home}") for home in set(_HOMES.values())}
    for exported, home in _HOMES.items():
        globals()[exported] = getattr(modules[home], exported)
    return globals()[name]
