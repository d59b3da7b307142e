"""``formae plugin conformance`` and ``formae plugin init``: the commands for people writing plugins.

Kept apart from the operator's commands in ``main``; the conformance kit (which imports the agent's
hub) is imported only when the command runs, so the CLI stays quick to start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from formae.cli.output import Column, Output, emit_data, plain_console, print_table

console = plain_console()
errors = plain_console(stderr=True)

OUTCOME_STYLES = {"pass": "green", "fail": "red", "skip": "dim"}
LOG_TAIL = 40


def register(plugin_app: typer.Typer) -> None:
    """Add the plugin author's commands to ``formae plugin``."""
    plugin_app.command("conformance")(conformance)
    plugin_app.command("init")(init)


def conformance(
    executable: Annotated[Path, typer.Argument(help="The plugin executable (a wrapper script for Node)")],
    types: Annotated[
        list[str] | None, typer.Option("--type", "-t", help="A resource type to take through its life")
    ] = None,
    properties: Annotated[
        list[Path] | None, typer.Option("--properties", "-p", help="JSON/YAML properties to create it with")
    ] = None,
    updates: Annotated[
        list[Path] | None, typer.Option("--update-properties", "-u", help="JSON/YAML properties to change")
    ] = None,
    target_config: Annotated[
        Path | None, typer.Option("--target-config", help="JSON/YAML config of the target (region, host…)")
    ] = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="human, json or yaml")] = Output.HUMAN,
) -> None:
    """Check that a plugin does what every formae plugin must, in any language; exit 1 if it does not.

    The plugin is started as the agent starts one, against an agent endpoint inside this command.
    Each --type is paired with the --properties (and --update-properties) at the same position.
    """
    from formae.conformance import Scenario, run_conformance

    types, properties, updates = types or [], properties or [], updates or []
    if len(properties) != len(types) or len(updates) > len(types):
        _usage("give one --properties for each --type (and at most one --update-properties each)")
    scenarios = [
        Scenario(t, _properties(p), _properties(updates[i]) if i < len(updates) else None)
        for i, (t, p) in enumerate(zip(types, properties, strict=True))
    ]
    config = _properties(target_config) if target_config else {}
    report = run_conformance([str(executable.absolute())], scenarios, config)
    from rich.text import Text

    if not emit_data(console, output, report.as_dict()):
        rows = [
            (r.name, Text(r.outcome.value, OUTCOME_STYLES[r.outcome.value]), Text(r.detail))
            for r in report.results
        ]
        columns = (Column("check", key=True), "outcome", Column("detail", drop=1))
        print_table(console, f"conformance of {executable}", columns, rows)
        counts = report.counts()
        console.print(
            f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped", markup=False
        )
        if not report.passed and report.log.strip():
            tail = "\n".join(report.log.rstrip().splitlines()[-LOG_TAIL:])
            errors.print(
                f"the plugin's last {LOG_TAIL} lines of output:\n{tail}", markup=False, highlight=False
            )
    raise typer.Exit(0 if report.passed else 1)


def init(
    name: Annotated[str, typer.Argument(help="The plugin's name, e.g. my-cloud")],
    language: Annotated[str, typer.Option("--language", "-l", help="python or typescript")] = "python",
    directory: Annotated[
        Path | None, typer.Option("--directory", "-d", help="Where to create it [./NAME]")
    ] = None,
    namespace: Annotated[str | None, typer.Option(help="Its namespace [NAME in CamelCase]")] = None,
    sdk: Annotated[
        str | None, typer.Option(help="npm spec of @formae/plugin for TypeScript [this checkout's sdk]")
    ] = None,
) -> None:
    """Create a plugin project: one resource type, tests that pass, a README and packaging."""
    from formae.scaffold import ScaffoldError, scaffold

    try:
        created = scaffold(name, language, directory or Path(name), namespace=namespace, sdk=sdk)
    except ScaffoldError as error:
        _usage(str(error))
    console.print(f"created {created}; see {created / 'README.md'}", markup=False)


def _properties(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        value = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        _usage(f"cannot read properties from {path}: {error}")
    if not isinstance(value, dict):
        _usage(f"{path} must hold one object of properties")
    return dict(value)


def _usage(message: str) -> Any:
    from rich.text import Text

    errors.print(Text.assemble(("error:", "red"), " ", message), highlight=False)
    raise typer.Exit(2)
