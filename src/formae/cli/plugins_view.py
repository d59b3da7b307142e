"""How ``formae plugin list`` shows plugins: a table, then what is wrong with each plugin that is not serving.

A crash-looping plugin gets its restarts, last exit code, next try and last stderr lines printed
under the table: that is usually all an operator needs to fix it (a missing credential, a bad path).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from formae.cli.output import Column, ColumnSpec, print_table

STDERR_SHOWN = 5


def print_plugins(console: Console, plugins: list[dict[str, Any]], *, wide: bool = False) -> None:
    rows = [
        (
            p["namespace"] or "?",
            p["version"],
            p["node"],
            p["location"],
            _health(p),
            (p.get("process") or {}).get("restarts", ""),
            p["rate_limit"] or "unlimited",
            len(p["types"]),
            ", ".join(p["types"]),
            p.get("pid"),
            p.get("in_flight"),
            p.get("protocol_version"),
            _skew(p.get("clock_skew_seconds")),
        )
        for p in plugins
    ]
    columns: list[ColumnSpec] = [
        Column("namespace", key=True),
        Column("version", drop=4),
        Column("node", key=True),
        Column("where", drop=3),
        "health",
        Column("restarts", drop=5),
        Column("rate/s", drop=2),
        Column("#", drop=6),
        Column("types", drop=1),
        Column("pid", wide=True),
        Column("in flight", wide=True),
        Column("protocol", wide=True),
        Column("clock skew", wide=True),
    ]
    print_table(console, None, columns, rows, wide=wide)
    for plugin in plugins:
        if not plugin["healthy"]:
            _print_problem(console, plugin)


def _skew(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:+.2f}s"


def _health(plugin: dict[str, Any]) -> Text:
    process = plugin.get("process") or {}
    if process.get("crash_looping"):
        return Text("crash-looping", "red")
    if plugin["healthy"]:
        return Text("healthy", "green")
    return Text(plugin["status"], "red")


def _print_problem(console: Console, plugin: dict[str, Any]) -> None:
    process = plugin.get("process") or {}
    lines = [f"{plugin['node']}: {plugin['status']}"]
    if process:
        lines.append(
            f"  process {process['state']}, {process['restarts']} restarts, "
            f"last exit code {process['last_exit_code']}, next try {process['next_try_at'] or '-'}"
        )
        lines += [f"  stderr| {line}" for line in process["stderr_tail"][-STDERR_SHOWN:]]
    for line in lines:
        console.print(line, markup=False, highlight=False)
