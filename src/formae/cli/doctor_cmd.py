"""``formae doctor``: run the checks of ``formae.cli.doctor`` and print what to do."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from formae.cli.output import Column, Output, emit_data, print_table
from formae.home import default_home

if TYPE_CHECKING:
    from rich.console import Console


def register(app: typer.Typer, console: Console) -> None:
    @app.command("doctor")
    def doctor(
        home: Annotated[Path | None, typer.Option(help="Agent home [env FORMAE_HOME]", metavar="DIR")] = None,
        api: Annotated[
            str | None, typer.Option("--api-url", help="The agent's REST API", metavar="URL")
        ] = None,
        output: Annotated[
            Output, typer.Option("--output", "-o", help="human, json or yaml", metavar="FORMAT")
        ] = Output.HUMAN,
    ) -> None:
        """Check what commonly goes wrong, and say what to do about each problem.

        \b
        Checks: Python version, pkl on PATH, the home's permissions, whether an agent runs and
        answers, ports in use, plugins installed vs registered, crash-looping plugins, and the
        clock skew of joined plugins. Exits 1 when a check fails (warnings exit 0).
        """
        from formae.cli.doctor import Status, examine

        findings = examine(home or default_home(os.environ), api)
        data = [
            {"check": f.check, "status": f.status.value, "detail": f.detail, "fix": f.fix} for f in findings
        ]
        if not emit_data(console, output, data):
            rows = [(f.status.value, f.check, f.detail, f.fix) for f in findings]
            columns = (Column("status"), Column("check"), Column("finding"), Column("what to do"))
            print_table(console, None, columns, rows)
        if any(f.status is Status.FAIL for f in findings):
            raise typer.Exit(1)
