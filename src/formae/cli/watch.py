"""Following a command to its end: a live rich view on a terminal, plain lines when piped."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from formae.cli.client import AgentClient
from formae.cli.output import command_table

FINAL_STATES = {"Success", "Failed", "Canceled"}
FINAL_UPDATE_STATES = {"Success", "Failed", "Canceled"}


def watch_command(
    client: AgentClient, command_id: str, console: Console, interval: float = 0.25
) -> dict[str, Any]:
    """Poll the command until it is final; the last view of it."""
    if console.is_terminal:
        return _watch_live(client, command_id, console, interval)
    return _watch_plain(client, command_id, console, interval)


def _watch_live(client: AgentClient, command_id: str, console: Console, interval: float) -> dict[str, Any]:
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )
    bar = progress.add_task(f"command {command_id}", total=None)
    command = client.command(command_id)
    with Live(console=console, refresh_per_second=8, transient=False) as live:
        while True:
            updates = command.get("updates") or []
            done = sum(u["state"] in FINAL_UPDATE_STATES for u in updates)
            progress.update(bar, total=len(updates) or 1, completed=done)
            live.update(Group(progress, command_table(command)))
            if command["state"] in FINAL_STATES:
                return command
            time.sleep(interval)
            command = client.command(command_id)


def _watch_plain(client: AgentClient, command_id: str, console: Console, interval: float) -> dict[str, Any]:
    seen: dict[str, str] = {}
    while True:
        command = client.command(command_id)
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
                f"command {command_id} {command['state']}: {command['message']}",
                markup=False,
                highlight=False,
            )
            return command
        time.sleep(interval)
