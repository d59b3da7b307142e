"""``formae agent config show`` and ``formae agent reload``: the configuration in force, and reloading it.

``config show`` asks the running agent (admin token) for what it runs with, each value with its
origin; with no agent running it resolves the file, the environment and the defaults itself, as
``agent start`` would without flags, and says so. ``reload`` is SIGHUP over the API: it prints
what was applied and what needs a restart, and fails (exit 3) when the file no longer validates.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from formae.cli.help import FormaeTyper
from formae.cli.output import Column, ColumnSpec, Output, emit_data, make_console, print_table
from formae.home import default_home

if TYPE_CHECKING:
    from formae.cli.client import AgentClient

app = FormaeTyper(no_args_is_help=True, help="The agent's configuration (docs/operations.md)")


def _cli() -> Any:
    """The CLI's shared conventions (client, errors, output), imported late: they import this module."""
    from formae.cli import main

    return main


@app.command("show")
def show(
    home: Annotated[Path | None, typer.Option(help="Agent home [env FORMAE_HOME]")] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="The file to resolve when no agent runs", metavar="FILE")
    ] = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="human, json or yaml")] = Output.HUMAN,
    api: Annotated[str | None, typer.Option("--api-url", help="The agent's REST API")] = None,
) -> None:
    """Every setting in force and where it came from (flag, env, file:line, default); secrets masked."""
    from formae.cli.agent_cmd import alive_agent  # the agent's modules: only this command pays for them

    where = home or default_home(os.environ)
    running = alive_agent(where)
    if api or os.environ.get("FORMAE_API_URL") or running:
        effective = _from_agent(api or (str(running["api_url"]) if running else None))
        note = "as the running agent has it"
    else:
        effective = _resolved_here(where, config_file)
        note = "no agent is running: what `formae agent start` would use without flags"
    console = make_console()
    if emit_data(console, output, effective):
        return
    make_console(stderr=True).print(f"{note}; file: {effective['file'] or 'none'}", markup=False)
    columns: list[ColumnSpec] = [
        Column("key", key=True),
        "value",
        Column("origin", drop=2),
        Column("live", drop=1),
    ]
    rows = [
        (s["key"], _shown(s["value"]), s["origin"], "reload" if s["live"] else "restart")
        for s in effective["settings"]
    ]
    print_table(console, None, columns, rows)


@app.command("init")
def init(
    home: Annotated[Path | None, typer.Option(help="Agent home [env FORMAE_HOME]")] = None,
) -> None:
    """Write {home}/formae.pkl: it amends formae's configuration module, so pkl checks every field."""
    from formae.config.starter import write_starter

    path = write_starter(home or default_home(os.environ))
    if path is None:
        _cli()._fail(f"{(home or default_home(os.environ))} already has a configuration file", 3)
    make_console().print(f"wrote {path}; edit it, then `formae agent config show`", markup=False)


def reload(
    api: Annotated[str | None, typer.Option("--api-url", help="The agent's REST API")] = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="human, json or yaml")] = Output.HUMAN,
) -> None:
    """Read the configuration again and apply what can change live (as SIGHUP does); admin token."""
    cli = _cli()
    with cli._client(api) as client:
        answer = cli._call(client.request, "POST", "/agent/reload")
    console = make_console()
    if emit_data(console, output, answer):
        return
    console.print(f"applied: {', '.join(answer['applied']) or 'nothing changed'}", markup=False)
    if answer["needs_restart"]:
        console.print(f"needs a restart: {', '.join(answer['needs_restart'])}", markup=False)


def _from_agent(api: str | None) -> dict[str, Any]:
    cli = _cli()
    client: AgentClient
    with cli._client(api) as client:
        return dict(cli._call(client.request, "GET", "/agent/config"))


def _resolved_here(home: Path, config_file: Path | None) -> dict[str, Any]:
    from formae.agent.config import AgentConfig, ConfigError
    from formae.config import effective_rows

    try:
        config = AgentConfig.load(
            os.environ, str(home), str(config_file) if config_file else None, {}, make_cookie=False
        )
    except ConfigError as error:
        _cli()._fail(str(error), _cli().EXIT_USAGE)
    assert config.settings is not None
    path = config.settings.file.path
    return {
        "file": str(path) if path else None,
        "settings": [row.as_json() for row in effective_rows(config.settings)],
    }


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "-"
    return str(value)
