"""How read commands print: ``human`` tables for people, ``json`` and ``yaml`` for scripts.

Text from the agent (plugin error messages, labels, native ids) is shown as it is, never read as
rich markup: a message like ``no such device [/dev/sdb]`` would otherwise raise MarkupError.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

STATE_STYLES = {
    "Success": "green",
    "Failed": "red",
    "InProgress": "yellow",
    "Dispatching": "yellow",
    "WaitingRetry": "magenta",
    "Pending": "dim",
    "Canceled": "dim",
    "Canceling": "magenta",
}


class Output(StrEnum):
    HUMAN = "human"
    JSON = "json"
    YAML = "yaml"


def emit_data(console: Console, output: Output, data: Any) -> bool:
    """Print ``data`` for a script and return True, or return False for the caller to print for people.

    ``Console.out`` writes the text as it is: ``print`` would wrap long lines at the console's width
    (80 columns in a pipe), which breaks YAML.
    """
    if output is Output.JSON:
        console.print_json(json.dumps(data))
        return True
    if output is Output.YAML:
        console.out(yaml.safe_dump(data, sort_keys=False), end="", highlight=False)
        return True
    return False


def table(title: str | Text, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    view = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        view.add_column(column)
    for row in rows:
        view.add_row(*(_cell(value) for value in row))
    return view


def _cell(value: Any) -> Text:
    if isinstance(value, Text):
        return value
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, list):
        return Text(", ".join(str(v) for v in value))
    return Text("" if value is None else str(value))


def styled_state(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def command_table(command: dict[str, Any], *, only_failed: bool = False) -> Table:
    """The command's updates; ``only_failed`` keeps a 10,000-resource apply's table readable."""
    updates = command.get("updates") or []
    if only_failed:
        updates = [u for u in updates if u["state"] != "Success"]
    rows = [
        (
            u["operation"],
            f"{u['stack']}/{u['label']}",
            u["type"],
            styled_state(u["state"]),
            u["attempts"],
            u.get("native_id"),
            _error(u),
        )
        for u in updates
    ]
    title = Text.assemble(
        f"command {command['id']} ({command['kind']} {command['mode']}): ", styled_state(command["state"])
    )
    return table(title, ["operation", "resource", "type", "state", "attempts", "native id", "error"], rows)


def counts_table(command: dict[str, Any]) -> Table:
    """How many updates are in each state: the live view of a command too large to list."""
    title = Text.assemble(
        f"command {command['id']} ({command['kind']} {command['mode']}): ", styled_state(command["state"])
    )
    counts = sorted(command.get("summary", {}).items())
    return table(title, ["state", "updates"], [(styled_state(state), n) for state, n in counts])


def _error(update: dict[str, Any]) -> str:
    if not update.get("error_code"):
        return ""
    return f"{update['error_code']}: {update.get('error') or ''}"


def plan_table(response: dict[str, Any]) -> Table:
    rows = [
        (
            _change(c),
            f"{c['stack']}/{c['label']}",
            c["type"],
            patch_text(c.get("patch")),
            ", ".join(c["depends_on"]),
        )
        for c in response["changes"]
        if not (c["replace"] and c["operation"] == "delete")
    ]
    summary = ", ".join(f"{count} to {name}" for name, count in response["summary"].items() if count)
    columns = ["change", "resource", "type", "properties", "after"]
    return table(f"plan: {summary or 'no changes'}", columns, rows)


def _change(change: dict[str, Any]) -> str:
    if change["replace"]:
        return "replace"
    return "adopt" if change.get("adopt") else str(change["operation"])


def patch_text(patch: list[dict[str, Any]] | None) -> str:
    """A JSON patch as a person reads it: ``Tags = {"env": "dev"}; Extra removed``."""
    parts = []
    for op in patch or []:
        name = str(op["path"]).lstrip("/").replace("~1", "/").replace("~0", "~")
        if op["op"] == "remove":
            parts.append(f"{name} removed")
        else:
            parts.append(f"{name} = {json.dumps(op.get('value'), sort_keys=True)}")
    return "; ".join(parts)
