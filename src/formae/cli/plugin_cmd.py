"""``formae plugin install|uninstall|info``: plugins installed into the agent's home like packages.

The work is in ``formae.installer``; this module parses the command line and prints. A running
agent notices installs and uninstalls by itself (it rescans its plugin directory), so nothing here
needs to talk to it, except ``info``, which also shows what the agent runs when one is up.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from formae.cli.client import AgentClient, AgentUnreachable, Rejected, api_ca, api_token, runtime_info
from formae.cli.output import Column, Output, emit_data, make_console, print_table
from formae.home import default_home

if TYPE_CHECKING:
    from formae.installer import InstalledVersion

EXIT_FAILED = 1

console = make_console()
errors = make_console(stderr=True)

HomeOption = Annotated[Path | None, typer.Option(help="Agent home [env FORMAE_HOME]")]


def register(plugins: typer.Typer) -> None:
    """Add install, uninstall and info to ``formae plugin``."""
    plugins.command("install")(plugin_install)
    plugins.command("uninstall")(plugin_uninstall)
    plugins.command("info")(plugin_info)


def plugin_install(
    source: Annotated[
        str,
        typer.Argument(
            help="A package directory, a wheel, an sdist, a requirement (name==version) or an executable"
        ),
    ],
    home: HomeOption = None,
    index_url: Annotated[str | None, typer.Option(help="pip's --index-url")] = None,
    find_links: Annotated[list[str] | None, typer.Option(help="pip's --find-links (repeatable)")] = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="pip's --no-index: only --find-links")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Reinstall a version that is already installed")
    ] = False,
) -> None:
    """Install a plugin into {home}/plugins/{name}/v{version}/ (a package gets its own virtualenv).

    A running agent starts it within a second; a newer version replaces the running one once it
    has registered, after the calls in flight on the old one are done.
    """
    from formae.installer import InstallError, PipOptions, install

    options = PipOptions(index_url, tuple(find_links or ()), no_index)
    try:
        installed = install(source, _home(home), options, force=force)
    except InstallError as error:
        _fail(str(error))
    namespace = installed.record.get("namespace", "")
    console.print(
        f"installed {installed.name} {installed.version} ({namespace}) in {installed.directory}", markup=False
    )


def plugin_uninstall(
    name: Annotated[str, typer.Argument(help="The plugin's name, e.g. postgres")],
    version: Annotated[str | None, typer.Option(help="Only this version (default: every version)")] = None,
    home: HomeOption = None,
) -> None:
    """Remove a plugin (or one version of it); a running agent stops it, or falls back to the next version."""
    from formae.installer import InstallError, uninstall

    try:
        removed = uninstall(_home(home), name, version)
    except InstallError as error:
        _fail(str(error))
    for gone in removed:
        console.print(f"uninstalled {gone.name} {gone.version}", markup=False)


def plugin_info(
    name: Annotated[str, typer.Argument(help="The plugin's name, e.g. postgres")],
    home: HomeOption = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="human, json or yaml")] = Output.HUMAN,
    api: Annotated[str | None, typer.Option("--api-url", help="The agent's REST API")] = None,
) -> None:
    """A plugin's installed versions (the newest is the one the agent runs) and what the agent runs."""
    from formae.installer import installed_versions

    versions = installed_versions(_home(home), name)
    if not versions:
        _fail(f"plugin {name} is not installed under {_home(home) / 'plugins'}")
    running = _running(name, versions, api or _api_of(_home(home)), _home(home))
    data = {"name": name, "installed": [_view(v, i == 0) for i, v in enumerate(versions)], "running": running}
    if emit_data(console, output, data):
        return
    rows = [
        [
            str(v.version),
            "yes" if i == 0 else "",
            str(v.record.get("kind", "?")),
            str(v.record.get("source", "")),
        ]
        for i, v in enumerate(versions)
    ]
    columns: list[Column | str] = [Column("version", key=True), "active", "kind", Column("source", drop=1)]
    print_table(console, f"plugin {name}", columns, rows)
    newest = versions[0].record
    console.print(f"namespace: {newest.get('namespace', '?')}", markup=False)
    console.print(f"types: {', '.join(newest.get('types', [])) or '?'}", markup=False)
    console.print(f"directory: {versions[0].directory}", markup=False)
    if running is None:
        console.print("agent: not reachable", markup=False)
    for node in running or []:
        console.print(
            f"running: {node['node']} version {node['version']} {node['health']} pid {node['pid']}",
            markup=False,
        )


def _view(version: InstalledVersion, active: bool) -> dict[str, Any]:
    return {
        "version": str(version.version),
        "active": active,
        "directory": str(version.directory),
        **{k: v for k, v in version.record.items() if k not in ("name", "version")},
    }


def _api_of(home: Path) -> str | None:
    """The API of the agent running on ``home``, if one does."""
    return os.environ.get("FORMAE_API_URL") or (runtime_info(home) or {}).get("api_url")


def _running(
    name: str, versions: list[InstalledVersion], api: str | None, home: Path
) -> list[dict[str, Any]] | None:
    """The agent's plugins of this name (by its namespace); None when no agent answers."""
    namespace = versions[0].record.get("namespace")
    if api is None:
        return None
    try:
        with AgentClient(api, token=api_token(home), ca=api_ca(home)) as client:
            plugins = client.plugins()
    except (AgentUnreachable, Rejected):
        return None
    return [
        {
            "node": p.get("node"),
            "version": p.get("version"),
            "health": "healthy" if p.get("healthy") else "unhealthy",
            "pid": p.get("pid"),
        }
        for p in plugins
        if p.get("name") == name or (namespace and p.get("namespace") == namespace)
    ]


def _home(home: Path | None) -> Path:
    return home or default_home(os.environ)


def _fail(message: str) -> NoReturn:
    from rich.text import Text

    errors.print(Text.assemble(("error:", "red"), " ", message), highlight=False)
    raise typer.Exit(EXIT_FAILED)


__all__ = ["register"]
