"""Following a command to its end: a live rich view on a terminal, plain lines when piped."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from formae.cli.client import AgentClient
from formae.cli.output import command_table, command_title, counts_table, unwrap
from formae.model.vocabulary import CommandState, UpdateState

FINAL_STATES = {s for s in CommandState if s.is_final}
FINAL_UPDATE_STATES = {s for s in UpdateState if s.is_final}
IN_FLIGHT_STATES = {UpdateState.DISPATCHING, UpdateState.IN_PROGRESS, UpdateState.WAITING_RETRY}
NOT_SUCCEEDED: list[str] = [s for s in UpdateState if s is not UpdateState.SUCCESS]


LISTED_UPDATES = 100
"""Above this many updates a command is followed by its counts (one cheap long poll), not row by row."""
OVERLAP = timedelta(seconds=2)
"""How far back each refresh asks again: an update stamped just before the last one seen may be
written (committed) just after it was read. Asking again costs only the changes of those seconds."""


class Changes:
    """A command's updates as last seen, refreshed with only what changed since (``updated_since``)."""

    def __init__(self, command: dict[str, Any]) -> None:
        self.updates = {u["update_id"]: u for u in command.get("updates") or []}

    def refresh(self, client: AgentClient, command_id: str) -> dict[str, Any]:
        """The command again, asking the agent only for the updates changed since the last look."""
        latest = max((u["updated_at"] for u in self.updates.values() if u.get("updated_at")), default=None)
        since = None if latest is None else (datetime.fromisoformat(latest) - OVERLAP).isoformat()
        command = client.command(command_id, since=since)
        for update in command.get("updates") or []:
            self.updates[update["update_id"]] = update
        return {**command, "updates": list(self.updates.values())}


def watch_command(
    client: AgentClient, command_id: str, console: Console, interval: float = 0.25
) -> dict[str, Any]:
    """Follow the command until it is final; the last full view of it."""
    console = unwrap(console)
    command = client.command(command_id, updates=False)  # counts first: a big command is not listed
    if sum(command["summary"].values()) > LISTED_UPDATES:
        return _watch_counts(client, command, console, interval)
    command = client.command(command_id)
    if console.is_terminal:
        return _watch_live(client, command, console, interval)
    return _watch_plain(client, command, console, interval)


def _watch_live(
    client: AgentClient, command: dict[str, Any], console: Console, interval: float
) -> dict[str, Any]:
    """Progress per stack and type, redrawn in place; then the summary on a line of its own."""
    changes = Changes(command)
    with Live(console=console, refresh_per_second=8, transient=False) as live:
        while True:
            live.update(progress_view(command, console.width))
            if command["state"] in FINAL_STATES:
                break
            time.sleep(interval)
            command = changes.refresh(client, command["id"])
    _summary(console, command)
    return command


def progress_view(command: dict[str, Any], width: int) -> RenderableType:
    """One bar per stack and type with its counts and what is in flight, then what failed."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for update in command.get("updates") or []:
        groups.setdefault((update["stack"], update["type"]), []).append(update)
    grid = Table.grid(padding=(0, 1))
    for _ in range(4):
        grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for (stack, type_), updates in sorted(groups.items()):
        done = sum(u["state"] in FINAL_UPDATE_STATES for u in updates)
        flying = [u["label"] for u in updates if u["state"] in IN_FLIGHT_STATES]
        grid.add_row(
            stack,
            type_,
            ProgressBar(total=len(updates), completed=done, width=20),
            f"{done}/{len(updates)}",
            Text(f"in flight: {', '.join(flying)}" if flying else "", style="yellow"),
        )
    parts: list[RenderableType] = [command_title(command), grid]
    if any(u["state"] == UpdateState.FAILED for u in command.get("updates") or []):
        parts.append(command_table(_failed_only(command)).renderable(width))
    return Group(*parts)


def _failed_only(command: dict[str, Any]) -> dict[str, Any]:
    return {
        **command,
        "updates": [u for u in command.get("updates") or [] if u["state"] == UpdateState.FAILED],
    }


def _summary(console: Console, command: dict[str, Any]) -> None:
    console.print()
    console.print(
        f"command {command['id']} {command['state']}: {command['message']}", markup=False, highlight=False
    )


def _watch_counts(
    client: AgentClient, command: dict[str, Any], console: Console, interval: float
) -> dict[str, Any]:
    """A large command: counts by state from a long poll, then the updates that did not succeed."""
    progress = _progress(command["id"])
    total = sum(command["summary"].values())
    with Live(console=console, refresh_per_second=4, transient=False, redirect_stdout=False) as live:
        while command["state"] not in FINAL_STATES:
            done = sum(n for state, n in command["summary"].items() if state in FINAL_UPDATE_STATES)
            progress.update(progress.task_ids[0], total=total, completed=done)
            live.update(Group(progress, counts_table(command).renderable(console.width)))
            command = client.command(command["id"], updates=False, wait=max(interval, 1.0))
        command = client.command(command["id"], states=NOT_SUCCEEDED)  # only what needs reading
        progress.update(progress.task_ids[0], total=total, completed=total)
        failed = command_table(command, only_failed=True).renderable(console.width)
        live.update(Group(progress, counts_table(command).renderable(console.width), failed))
    _summary(console, command)
    return command


def _progress(command_id: str) -> Progress:
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )
    progress.add_task(f"command {command_id}", total=None)
    return progress


def _watch_plain(
    client: AgentClient, command: dict[str, Any], console: Console, interval: float
) -> dict[str, Any]:
    seen: dict[str, str] = {}
    changes = Changes(command)
    while True:
        for update in command.get("updates") or []:
            if seen.get(update["update_id"]) != update["state"]:
                seen[update["update_id"]] = update["state"]
                error = f" {update['error_code']}: {update['error']}" if update.get("error_code") else ""
                console.print(
                    f"{update['operation']} {update['stack']}/{update['label']} {update['state']}{error}",
                    markup=False,
                    highlight=False,
                )
        if command["state"] in FINAL_STATES:
            _summary(console, command)
            return command
        time.sleep(interval)
        command = changes.refresh(client, command["id"])
