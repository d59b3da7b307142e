"""``formae graph``: the dependency graph of a forma's plan or of managed resources.

formae graph FILE [-o dot|svg|png]          what applying FILE would do, as the agent plans it
formae graph --query Q [-o dot|svg|png]     managed resources matching Q, coloured by drift

The plan is the agent's own (``apply --simulate``), so the operations drawn are those an apply
would run. DOT goes to stdout as text; SVG and PNG are laid out by Graphviz's ``dot``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from formae.cli.client import AgentClient, Call
from formae.graph.options import COLLAPSE_ABOVE, Format

if TYPE_CHECKING:
    from formae.graph import Graph
    from formae.model import ResourceKey

EXIT_FAILED, EXIT_USAGE = 1, 2


def register(
    app: typer.Typer,
    connect: Callable[[str | None], AgentClient],
    call: Call,
    load: Callable[[Path], tuple[str, str]],
    fail: Callable[[str, int], NoReturn],
) -> None:
    """Add ``graph`` to the CLI; the callables carry main's conventions (exit codes, forma loading)."""

    @app.command()
    def graph(
        file: Annotated[Path | None, typer.Argument(help="Forma whose plan to draw")] = None,
        query: Annotated[
            str | None, typer.Option("--query", help="Draw managed resources instead, e.g. 'stack:net'")
        ] = None,
        output: Annotated[Format, typer.Option("--output", "-o", help="dot, svg or png")] = Format.DOT,
        mode: Annotated[str, typer.Option(help="The plan of a reconcile or a patch apply")] = "reconcile",
        collapse_above: Annotated[
            int, typer.Option(help="Draw more resources than this of one type in one stack as one box")
        ] = COLLAPSE_ABOVE,
        api: Annotated[str | None, typer.Option("--api-url", help="The agent's REST API")] = None,
    ) -> None:
        """Draw resources and the references between them, coloured by plan or by drift.

        \b
        Examples:
          formae graph examples/network.pkl | dot -Tsvg > plan.svg
          formae graph examples/network.pkl -o png > plan.png
          formae graph --query 'stack:net' -o svg > net.svg
        Arrows point from a resource to those that refer to it (the order the work flows).
        """
        if (file is None) == (query is None):
            fail("give a forma FILE or --query, not both and not neither", EXIT_USAGE)
        if output is Format.PNG and sys.stdout.isatty():
            fail("a PNG is not for a terminal: redirect it (formae graph ... -o png > graph.png)", EXIT_USAGE)
        from formae.graph import RenderError, render, to_dot, view

        with connect(api) as client:
            if file is not None:
                forma, source = load(file)
                drawn = _plan(call(client.apply, forma, mode, True, False, source), source)
            else:
                drawn = _inventory(client, call, query or "")
        try:
            data = render(to_dot(view(drawn, max(collapse_above, 1))), output)
        except RenderError as error:
            fail(str(error), EXIT_FAILED)
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def _key(item: dict[str, Any]) -> ResourceKey:
    from formae.model import ResourceKey

    return ResourceKey(str(item["stack"]), str(item["type"]), str(item["label"]))


def _plan(response: dict[str, Any], source: str) -> Graph:
    from formae.graph import Step, plan_graph

    steps = [
        Step(
            id=c["id"],
            operation=c["operation"],
            key=_key(c),
            depends_on=frozenset(c.get("depends_on", ())),
            replace=bool(c.get("replace")),
            adopt=bool(c.get("adopt")),
            native_id=c.get("native_id"),
        )
        for c in response["changes"]
    ]
    return plan_graph(steps, f"plan of {source}" if steps else f"plan of {source}: nothing to do")


def _inventory(client: AgentClient, call: Call, query: str) -> Graph:
    from formae.graph import Held, inventory_graph

    resources = call(client.inventory, "resources", query)
    drift = {_key(d): d["change"] for d in call(client.request, "GET", "/drift", params={"query": query})}
    held = [
        Held(_key(r), r.get("native_id"), tuple(_key(k) for k in r.get("refers_to", ())), drift.get(_key(r)))
        for r in resources
    ]
    present = {h.key for h in held}
    held += [Held(key, None, (), change) for key, change in drift.items() if key not in present]
    return inventory_graph(held, f"resources matching {query!r}" if query else "managed resources")
