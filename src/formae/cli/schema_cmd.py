"""``formae schema pkl NAMESPACE [-o FILE]``: typed Pkl classes for a namespace's resource types.

The schemas come from the plugin itself (``--describe`` prints what it announces): the newest
installed plugin of that namespace under the agent's home, or the executable given with ``--plugin``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from formae.cli.output import make_console
from formae.home import default_home

if TYPE_CHECKING:
    from formae.wire.types import ResourceSchema

DESCRIBE_TIMEOUT = 30.0

schema_app = typer.Typer(no_args_is_help=True, help="Resource type schemas, for writing formas")
errors = make_console(stderr=True)


@schema_app.command("pkl")
def schema_pkl(
    namespace: Annotated[str, typer.Argument(help="The namespace, e.g. PostgreSQL")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout)")
    ] = None,
    plugin: Annotated[
        Path | None, typer.Option(help="The plugin executable (default: the installed one serving NAMESPACE)")
    ] = None,
    base: Annotated[
        str | None, typer.Option(help="How the module imports formae.pkl (default: a path to formae's own)")
    ] = None,
    home: Annotated[Path | None, typer.Option(help="Agent home [env FORMAE_HOME]")] = None,
) -> None:
    """A Pkl module of classes for NAMESPACE's resource types, from the schemas its plugin announces."""
    description = _describe(plugin) if plugin else _installed(namespace, home or default_home(os.environ))
    if description.get("namespace") != namespace:
        _fail(f"{plugin} serves namespace {description.get('namespace')!r}, not {namespace!r}")
    schemas = [_schema(s) for s in description.get("schemas", [])]
    if not schemas:
        _fail(f"the plugin of {namespace} announces no schemas (is its formae SDK older than `schema pkl`?)")
    target = output.resolve() if output else None
    from formae.schema import pkl_module

    text = pkl_module(
        namespace,
        schemas,
        base or _base_import(target),
        f"{description.get('name', '?')} {description.get('version', '?')}",
    )
    if target is None:
        typer.echo(text, nl=False)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def _base_import(target: Path | None) -> str:
    """formae.pkl relative to where the module is written, or absolute when printed."""
    from formae.schema import BASE_MODULE

    if target is None:
        return str(BASE_MODULE)
    return os.path.relpath(BASE_MODULE, target.parent)


def _installed(namespace: str, home: Path) -> dict[str, Any]:
    """The description of the installed plugin serving ``namespace`` (the newest of each plugin is asked)."""
    from formae.agent.plugin_manager import discover_plugins

    for installed in discover_plugins(home / "plugins"):
        recorded = _record(installed.executable.parent)
        if recorded.get("namespace") not in (None, namespace):
            continue
        description = _describe(installed.executable)
        if description.get("namespace") == namespace:
            return description
    _fail(f"no plugin serving {namespace} is installed under {home / 'plugins'}; name one with --plugin")


def _record(directory: Path) -> dict[str, Any]:
    try:
        record = json.loads((directory / "install.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _describe(executable: Path) -> dict[str, Any]:
    try:
        done = subprocess.run(
            [str(executable), "--describe"],
            capture_output=True,
            text=True,
            timeout=DESCRIBE_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        description = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError) as error:
        _fail(f"cannot run {executable} --describe: {error}")
    if not isinstance(description, dict):
        _fail(f"{executable} --describe did not describe a plugin: {done.stderr.strip()}")
    return description


def _schema(data: dict[str, Any]) -> ResourceSchema:
    from formae.wire.types import ResourceSchema

    return ResourceSchema(
        str(data["type"]),
        str(data.get("identifier", "")),
        tuple(data.get("create_only", ())),
        tuple(data.get("read_only", ())),
        dict(data.get("json_schema") or {}),
    )


def _fail(message: str) -> NoReturn:
    from rich.text import Text

    errors.print(Text.assemble(("error:", "red"), " ", message), highlight=False)
    raise typer.Exit(1)
