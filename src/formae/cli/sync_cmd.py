"""``formae sync`` and ``formae status drift``: read the cloud back, and see what changed there.

formae sync [--query Q] [--watch]      read every managed resource (or those matching Q)
formae status drift [--query Q]        what changed in the cloud since the last apply
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from formae.cli.client import AgentClient, Call
from formae.cli.output import Column, ColumnSpec, Output, emit_data, patch_text, print_table

if TYPE_CHECKING:
    from rich.console import Console

QueryOption = Annotated[str, typer.Option("--query", help="e.g. 'stack:net type:FakeAWS::*'")]
FINAL_SYNC_STATES = ("Success", "Failed")
LONG_POLL = 30.0
_LONG_POLL: dict[str, Any] = {"params": {"wait": LONG_POLL}, "timeout": LONG_POLL + 30}
"""The agent answers when the run ends or after LONG_POLL seconds; the HTTP timeout must outlast that."""


def register(
    app: typer.Typer,
    status_app: typer.Typer,
    connect: Callable[[str | None], AgentClient],
    call: Call,
    console: Console,
) -> None:
    """Add the commands to the CLI; ``connect`` and ``call`` carry main's conventions (exit codes)."""

    @app.command()
    def sync(
        query: QueryOption = "",
        watch: Annotated[bool, typer.Option("--watch", help="Wait for the sync to end and show it")] = False,
        output: Annotated[Output, typer.Option("--output", "-o")] = Output.HUMAN,
        api: Annotated[str | None, typer.Option("--api-url")] = None,
    ) -> None:
        """Read the managed resources back from the cloud and record what changed there."""
        with connect(api) as client:
            run = call(client.request, "POST", "/sync", json={"query": query})
            if watch:
                run = _wait(client, call, run["id"])
        if not emit_data(console, output, run):
            _show_run(console, run, watch)
        if watch and run["state"] != "Success":
            raise typer.Exit(1)

    @status_app.command("drift")
    def drift(
        query: QueryOption = "",
        output: Annotated[Output, typer.Option("--output", "-o")] = Output.HUMAN,
        api: Annotated[str | None, typer.Option("--api-url")] = None,
    ) -> None:
        """What changed in the cloud since the last apply (found by sync)."""
        with connect(api) as client:
            drifts = call(client.request, "GET", "/drift", params={"query": query})
        if emit_data(console, output, drifts):
            return
        rows = [
            (f"{d['stack']}/{d['label']}", d["type"], d["native_id"], d["change"], _what(d), d["detected_at"])
            for d in drifts
        ]
        title = "drift: nothing changed in the cloud" if not rows else f"drift: {len(rows)} resources"
        columns: list[ColumnSpec] = [
            Column("resource", key=True),
            Column("type", key=True),
            Column("native id", key=True, drop=1),
            "change",
            Column("what", drop=2),
            Column("seen", drop=3),
        ]
        print_table(console, title, columns, rows, wide=output is Output.WIDE)

    @app.command()
    def discover(
        target: Annotated[str | None, typer.Option("--target", help="Only this target")] = None,
        resource_type: Annotated[str | None, typer.Option("--type", help="Only this resource type")] = None,
        watch: Annotated[bool, typer.Option("--watch", help="Wait for discovery to end and show it")] = False,
        output: Annotated[Output, typer.Option("--output", "-o")] = Output.HUMAN,
        api: Annotated[str | None, typer.Option("--api-url")] = None,
    ) -> None:
        """List the cloud's resources; those no stack manages join the inventory as managed:false."""
        with connect(api) as client:
            run = call(client.request, "POST", "/discover", json={"target": target, "type": resource_type})
            while watch and run["state"] not in FINAL_SYNC_STATES:
                run = call(client.request, "GET", f"/discover/{run['id']}", **_LONG_POLL)
        if not emit_data(console, output, run):
            _show_discovery(console, run, watch)
        if watch and run["state"] != "Success":
            raise typer.Exit(1)

    @app.command()
    def extract(
        file: Annotated[str | None, typer.Argument(help="Write the forma here (stdout when absent)")] = None,
        query: QueryOption = "",
        stack: Annotated[
            str, typer.Option("--stack", help="The stack unmanaged resources go to")
        ] = "adopted",
        form: Annotated[str, typer.Option("--output", "-o", help="pkl, json or yaml")] = "pkl",
        api: Annotated[str | None, typer.Option("--api-url")] = None,
    ) -> None:
        """Write a forma of the matching resources, managed or not; applying it adopts the unmanaged."""
        if form not in ("pkl", "json", "yaml"):
            console.print(f"error: --output must be pkl, json or yaml, not {form!r}", markup=False)
            raise typer.Exit(2)
        with connect(api) as client:
            forma = call(client.request, "GET", "/extract", params={"query": query, "stack": stack})
        from formae.forma.render import render

        text = render(forma, form)
        if file is None:
            console.out(text, end="", highlight=False)
            return
        with open(file, "w", encoding="utf-8") as out:
            out.write(text)
        console.print(f"wrote {len(forma['resources'])} resources to {file}", markup=False)


def _show_discovery(console: Console, run: dict[str, Any], watched: bool) -> None:
    if not watched:
        console.print(f"discovery {run['id']} queued; follow it with: formae discover --watch", markup=False)
        return
    counts = ", ".join(f"{n} {what}" for what, n in run["counts"].items() if n) or "nothing found"
    console.print(f"discovery {run['id']} {run['state']}: {counts}", markup=False)
    for error in run["errors"]:
        console.print(f"  - {error}", markup=False, highlight=False)
    if run["counts"].get("new"):
        console.print(
            "see them with: formae inventory resources --query managed:false; "
            "adopt them with: formae extract --query managed:false adopted.pkl && formae apply adopted.pkl",
            markup=False,
        )


def _wait(client: AgentClient, call: Call, run_id: str) -> dict[str, Any]:
    while True:
        run: dict[str, Any] = call(client.request, "GET", f"/sync/{run_id}", **_LONG_POLL)
        if run["state"] in FINAL_SYNC_STATES:
            return run
        time.sleep(0.1)  # answered early: keep asking


def _show_run(console: Console, run: dict[str, Any], watched: bool) -> None:
    if not watched:
        console.print(f"sync {run['id']} queued; follow it with: formae sync --watch", markup=False)
        return
    counts = ", ".join(f"{n} {what}" for what, n in run["counts"].items() if n) or "nothing to read"
    console.print(f"sync {run['id']} {run['state']}: {run['total']} resources; {counts}", markup=False)
    for error in run["errors"]:
        console.print(f"  - {error}", markup=False, highlight=False)
    if run["counts"].get("changed") or run["counts"].get("gone"):
        console.print("see what changed with: formae status drift", markup=False)


def _what(drift: dict[str, Any]) -> str:
    if drift["change"] == "deleted":
        return "deleted in the cloud"
    return patch_text(drift["patch"]) or "changed"
