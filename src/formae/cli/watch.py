"""Following a command to its end: a live rich view on a terminal, plain lines when piped."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from formae.cli.client import AgentClient
from formae.cli.output import command_table, counts_table

FINAL_STATES = {"Success", "Failed", "Canceled"}
FINAL_UPDATE_STATES = {"Success", "Failed", "Canceled"}


LISTED_UPDATES = 100
"""Above this many updates a command is followed by its counts (one cheap long poll), not row by row."""


def watch_command(
    client: AgentClient, command_id: str, console: Console, interval: float = 0.25
) -> dict[str, Any]:
    """Follow the command until it is final; the last full view of it."""
    command = client.command(command_id)
    if len(command.get("updates") or []) > LISTED_UPDATES:
        return _watch_counts(client, command, console, interval)
    if console.is_terminal:
        return _watch_live(client, command, console, interval)
    return _watch_plain(client, command, console, interval)


def _watch_live(
    client: AgentClient, command: dict[str, Any], console: Console, interval: float
) -> dict[str, Any]:
    progress = _progress(command["id"])
    with Live(console=console, refresh_per_second=8, transient=False) as live:
        while True:
            updates = command.get("updates") or []
            done = sum(u["state"] in FINAL_UPDATE_STATES for u in updates)
            progress.update(progress.task_ids[0], total=len(updates) or 1, completed=done)
            live.update(Group(progress, command_table(command)))
            if command["state"] in FINAL_STATES:
                return command
            time.sleep(interval)
            command = client.command(command["id"])


def _watch_counts(
    client: AgentClient, command: dict[str, Any], console: Console, interval: float
) -> dict[str, Any]:
    """A large command: counts by state from a long poll, then the updates that did not succeed."""
    progress = _progress(command["id"])
    total = len(command.get("updates") or [])
    with Live(console=console, refresh_per_second=4, transient=False, redirect_stdout=False) as live:
        while command["state"] not in FINAL_STATES:
            done = sum(n for state, n in command["summary"].items() if state in FINAL_UPDATE_STATES)
            progress.update(progress.task_ids[0], total=total, completed=done)
            live.update(Group(progress, counts_table(command)))
            command = client.command(command["id"], updates=False, wait=max(interval, 1.0))
        command = client.command(command["id"])
        progress.update(progress.task_ids[0], total=total, completed=total)
        live.update(Group(progress, counts_table(command), command_table(command, only_failed=True)))
    console.print(
        f"command {command['id']} {command['state']}: {command['message']}", markup=False, highlight=False
    )
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
            console.print(
                f"command {command['id']} {command['state']}: {command['message']}",
                markup=False,
                highlight=False,
            )
            return command
        time.sleep(interval)
        command = client.command(command["id"])
