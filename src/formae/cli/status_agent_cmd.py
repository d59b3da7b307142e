"""``formae status agent``: the agent's metrics summed up for a person (``GET /api/v1/stats``).

The JSON and YAML output is an object with named sections, so that more can join it without
breaking scripts: ``stats`` and ``cluster`` (``GET /api/v1/agents``: every agent sharing the store,
the leader, and the commands whose lease each holds).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from formae.cli.client import AgentClient, Call
from formae.cli.output import Column, ColumnSpec, Output, emit_data, print_table

if TYPE_CHECKING:
    from rich.console import Console


def register(
    status_app: typer.Typer,
    connect: Callable[[str | None], AgentClient],
    call: Call,
    console: Console,
) -> None:
    @status_app.command("agent")
    def status_agent(
        output: Annotated[Output, typer.Option("--output", "-o")] = Output.HUMAN,
        api: Annotated[
            str | None,
            typer.Option("--api-url", help="The agent's REST API [env FORMAE_API_URL]", metavar="URL"),
        ] = None,
    ) -> None:
        """What the agent has done since it started: commands, plugin calls, retries, the datastore.

        \b
        Examples:
          formae status agent            # for people
          formae status agent -o json    # {"stats": {...}, "cluster": {...}}: GET /api/v1/stats, /agents
        """
        with connect(api) as client:
            stats = call(client.request, "GET", "/stats")
            cluster = call(client.agents)
        if not emit_data(console, output, {"stats": stats, "cluster": cluster}):
            show_stats(console, stats, wide=output is Output.WIDE)
            show_cluster(console, cluster)


_AGENT_COLUMNS: list[ColumnSpec] = [
    Column("agent"), Column("host"), Column("pid"), Column("api"), Column("state"),
    Column("leader"), Column("commands"),
]  # fmt: skip


def show_cluster(console: Console, cluster: dict[str, Any]) -> None:
    """One row per agent sharing the store: alive or gone, the leader, the commands it runs."""
    rows: list[tuple[str, ...]] = []
    for agent in cluster.get("agents", []):
        commands = ", ".join(f"{c['command_id']} ({c['state']})" for c in agent["commands"]) or "-"
        state = "alive" if agent["alive"] else f"gone since {agent['expires_at']}"
        leader = "leader" if agent["leader"] else ""
        rows.append(
            (agent["id"], agent["host"], str(agent["pid"]), agent["api_url"], state, leader, commands)
        )
    unleased = ", ".join(c["command_id"] for c in cluster.get("unleased", []))
    if unleased:
        rows.append(("(none)", "", "", "", "to be taken over", "", unleased))
    print_table(console, "agents sharing the store", _AGENT_COLUMNS, rows)


def show_stats(console: Console, stats: dict[str, Any], *, wide: bool = False) -> None:
    def line(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    line(f"agent {stats['version']}, up {_duration(stats['uptime_seconds'])}")
    line(f"commands: {_nested(stats['commands'])}")
    line(f"resource updates: {_nested(stats['resource_updates'])}")
    line(f"plugins: {_nested(stats['plugins'])}")
    if stats["plugin_restarts"] or stats["heartbeats_missed"]:
        restarts, missed = _flat(stats["plugin_restarts"]), _flat(stats["heartbeats_missed"])
        line(f"plugin restarts: {restarts}; heartbeats missed: {missed}")
    line(f"retries: {_flat(stats['retries'])}")
    waits = {k: f"{v:.2f}s" for k, v in stats["rate_limit_wait_seconds"].items()}
    line(f"waiting for rate-limit tokens: {_flat(waits)}")
    store = stats["datastore"]
    line(
        f"datastore: {store['commits']} commits of {store['writes']} writes "
        f"({store['mean_writes_per_commit']:.1f} per commit), mean {_ms(store['mean_commit_seconds'])}, "
        f"p95 {_ms(store['p95_commit_seconds'])}"
    )
    for run in stats["progress"]:
        state = "running" if run["running"] else "last run"
        planned = f" of {run['planned']}" if run["planned"] is not None else ""
        line(f"{run['kind']} ({state}{planned}): {_flat(run['counts'])}")
    loop = stats["event_loop"]
    line(f"event loop lag: last {_ms(loop['last_lag_seconds'])}, p95 {_ms(loop['p95_lag_seconds'])}")
    _calls_table(console, stats["plugin_calls"], wide)


def _calls_table(console: Console, calls: list[dict[str, Any]], wide: bool) -> None:
    if not calls:
        return
    columns: list[ColumnSpec] = [
        Column("namespace", key=True),
        "operation",
        "calls",
        "failures",
        "mean",
        "p95",
    ]
    rows = [
        (
            c["namespace"],
            c["operation"],
            c["calls"],
            c["failures"],
            _ms(c["mean_seconds"]),
            _ms(c["p95_seconds"]),
        )
        for c in calls
    ]
    print_table(console, "plugin calls", columns, rows, wide=wide)


def _nested(counts: dict[str, dict[str, int]]) -> str:
    return "; ".join(f"{outer} {_flat(inner)}" for outer, inner in sorted(counts.items())) or "none"


def _flat(counts: dict[str, Any]) -> str:
    return ", ".join(f"{value} {key}" for key, value in sorted(counts.items())) or "none"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
