"""The ``formae`` command: apply, destroy, cancel, status, inventory, plugin, agent.

Exit codes scripts can trust: 0 success; 1 the command ran and failed; 2 bad usage;
3 the agent rejected the command (bad forma, missing plugin, needs --force); 4 no agent.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer

from formae.cli import (
    api_cmd,
    completion_cmd,
    config_cmd,
    doctor_cmd,
    graph_cmd,
    plugin_author_cmd,
    plugin_cmd,
    schema_cmd,
    status_agent_cmd,
    sync_cmd,
)
from formae.cli.client import (
    AgentClient,
    AgentUnreachable,
    NoAgentKnown,
    Rejected,
    api_ca,
    api_token,
    api_url,
)
from formae.cli.help import FormaeTyper
from formae.cli.output import (
    Column,
    ColumnSpec,
    Output,
    command_table,
    emit_data,
    emit_json_pages,
    make_console,
    plan_table,
    print_table,
    styled_state,
)
from formae.cli.startup import prune
from formae.home import default_home
from formae.model.vocabulary import CommandState

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3
EXIT_NO_AGENT = 4

LONG_POLL = 30.0
"""Seconds the agent may hold a ``--watch --output json|yaml`` poll before answering."""

T = TypeVar("T")
P = ParamSpec("P")

app = FormaeTyper()
agent_app = FormaeTyper(help="Run and control the agent")
status_app = FormaeTyper(help="Status of commands")
inventory_app = FormaeTyper(help="What the agent manages")
plugin_app = FormaeTyper(help="Resource plugins")
token_app = FormaeTyper(help="One-time join tokens for plugins on other hosts")
plugin_app.add_typer(token_app, name="token")
completion_cmd.register(app)
app.add_typer(agent_app, name="agent")
app.add_typer(status_app, name="status")
app.add_typer(inventory_app, name="inventory")
app.add_typer(plugin_app, name="plugin")
plugin_author_cmd.register(plugin_app)
plugin_cmd.register(plugin_app)
app.add_typer(api_cmd.app, name="api")
agent_app.add_typer(config_cmd.app, name="config")
agent_app.command("reload")(config_cmd.reload)
app.add_typer(schema_cmd.schema_app, name="schema")

console = make_console()
errors = make_console(stderr=True)
doctor_cmd.register(app, console)

OutputOption = Annotated[
    Output, typer.Option("--output", "-o", help="human, wide (more columns), json or yaml", metavar="FORMAT")
]
ApiOption = Annotated[
    str | None, typer.Option("--api-url", help="The agent's REST API [env FORMAE_API_URL]", metavar="URL")
]
WatchOption = Annotated[bool, typer.Option("--watch", help="Follow the command until it ends")]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="For scripts: print only the command id (nothing with --watch); the exit code tells",
    ),
]
QueueOption = Annotated[
    bool,
    typer.Option("--wait", help="Queue behind a running command on the same stacks instead of exit 3"),
]


def main() -> None:
    if not os.environ.get("_FORMAE_COMPLETE"):  # completion walks every command
        prune(app, sys.argv[1:])
    app()


@app.callback()
def _everywhere(
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colours or other styling [env NO_COLOR]")
    ] = False,
    no_pager: Annotated[
        bool,
        typer.Option("--no-pager", help="Never page long listings [env FORMAE_PAGER empty]"),
    ] = False,
) -> None:
    """formae: infrastructure as code, with plugins.

    \b
    Examples:
      formae agent start --background
      formae apply examples/network.pkl --watch
      formae status command
      formae inventory resources --query 'stack:net'
    """
    # --no-color and --no-pager are acted on by formae.cli.entry before the consoles exist; here they
    # are only parsed.


def _fail(message: str, code: int) -> NoReturn:
    from rich.text import Text

    errors.print(Text.assemble(("error:", "red"), " ", message), highlight=False)
    raise typer.Exit(code)


def _client(url: str | None) -> AgentClient:
    try:
        return AgentClient(api_url(url), token=api_token(), ca=api_ca())
    except NoAgentKnown as error:
        _fail(str(error), EXIT_NO_AGENT)


def _call(method: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """One API call (a method of ``AgentClient``, type-checked with its arguments) with the CLI's error
    conventions applied."""
    return _conventionally(lambda: method(*args, **kwargs))


def _conventionally(talk: Callable[[], T]) -> T:
    """``talk()``, the agent's errors turned into a message and the exit code scripts expect."""
    try:
        return talk()
    except AgentUnreachable as error:
        _fail(f"{error}\nstart one with: formae agent start --background", EXIT_NO_AGENT)
    except Rejected as error:
        details = "".join(f"\n  - {problem}" for problem in error.problems)
        _fail(f"{error}{details}", EXIT_REJECTED if error.status < 500 else EXIT_FAILED)


def _load(path: Path) -> tuple[str, str]:
    """The forma as JSON text for the agent, which validates it (and names every problem)."""
    from formae.forma import FormaError, forma_text

    try:
        text = forma_text(path)
    except FormaError as error:
        _fail("invalid forma\n" + "\n".join(f"  - {problem}" for problem in error.problems), EXIT_REJECTED)
    return text, path.name


# ---------------------------------------------------------------- apply / destroy / cancel


@app.command()
def apply(
    file: Annotated[Path, typer.Argument(help="Forma: .pkl, .json, .yaml")],
    mode: Annotated[
        str, typer.Option(help="reconcile: the stacks become exactly the forma; patch: only add/change")
    ] = "reconcile",
    simulate: Annotated[bool, typer.Option("--simulate", help="Print the plan and change nothing")] = False,
    force: Annotated[bool, typer.Option("--force", help="Reconcile even over out-of-band changes")] = False,
    watch: WatchOption = False,
    quiet: QuietOption = False,
    queue: QueueOption = False,
    output: OutputOption = Output.HUMAN,
    api: ApiOption = None,
) -> None:
    """Make the resources in FILE exist as described.

    \b
    Examples:
      formae apply examples/network.pkl --simulate    # the plan, nothing changed
      formae apply examples/network.pkl --watch       # apply and follow it to the end
      formae apply patch.yaml --mode patch            # add or change, never delete
      id=$(formae apply forma.json --quiet)           # for scripts: just the command id
    """
    if mode not in ("reconcile", "patch"):
        _fail(f"--mode must be reconcile or patch, not {mode!r}", EXIT_USAGE)
    forma, source = _load(file)
    with _client(api) as client:
        response = _call(client.apply, forma, mode, simulate, force, source, queue=queue)
        _submitted(client, response, watch, output, quiet)


@app.command()
def destroy(
    file: Annotated[Path | None, typer.Argument(help="Forma whose resources to delete")] = None,
    query: Annotated[
        str | None,
        typer.Option(
            "--query",
            help="e.g. 'stack:net type:FakeAWS::*'",
            metavar="QUERY",
            autocompletion=completion_cmd.complete_query,
        ),
    ] = None,
    simulate: Annotated[bool, typer.Option("--simulate")] = False,
    watch: WatchOption = False,
    quiet: QuietOption = False,
    queue: QueueOption = False,
    output: OutputOption = Output.HUMAN,
    api: ApiOption = None,
) -> None:
    """Delete the resources of a forma, or those matching a query.

    \b
    Examples:
      formae destroy examples/network.pkl --watch
      formae destroy --query 'stack:net' --simulate
      formae destroy --query 'stack:net type:FakeAWS::S3::*' --watch
    """
    if (file is None) == (query is None):
        _fail("give a forma file or --query, not both", EXIT_USAGE)
    forma, source = _load(file) if file is not None else (None, "query")
    with _client(api) as client:
        response = _call(client.destroy, forma, query, simulate, source, queue=queue)
        _submitted(client, response, watch, output, quiet)


def _submitted(
    client: AgentClient, response: dict[str, Any], watch: bool, output: Output, quiet: bool
) -> None:
    command_id = response.get("command_id")
    if response.get("queued_behind") and output is Output.HUMAN:
        behind = ", ".join(response["queued_behind"])
        errors.print(f"command {command_id} queued behind {behind}; it is planned when they end")
    if quiet and not watch:
        print(command_id or "")
        return
    if not watch or command_id is None:
        if not emit_data(console, output, response):
            plan_table(response).print(console, wide=output is Output.WIDE)
            if command_id:
                follow = f"formae status command {command_id} --watch"
                console.print(f"command [bold]{command_id}[/] submitted; follow it with: {follow}")
        return
    _finish(client, command_id, output, quiet)


def _finish(client: AgentClient, command_id: str, output: Output, quiet: bool = False) -> None:
    """Follow the command to its end (the agent may go away meanwhile); exit 1 unless it succeeded."""
    from formae.cli.watch import watch_command

    if quiet or not output.for_people:
        command = _conventionally(lambda: _wait_quietly(client, command_id))
        if quiet:
            if command["state"] != CommandState.SUCCESS:
                _fail(f"command {command_id} {command['state']}: {command['message']}", EXIT_FAILED)
            return
        command = _conventionally(lambda: _emit_command(client, command_id, output))
    else:
        command = _conventionally(lambda: watch_command(client, command_id, console))
    if command["state"] != CommandState.SUCCESS:
        raise typer.Exit(EXIT_FAILED)


def _wait_quietly(client: AgentClient, command_id: str) -> dict[str, Any]:
    """Long-poll the counts, not the updates (100,000 of them for a big apply), until it ends."""
    from formae.cli.watch import FINAL_STATES

    while (command := client.command(command_id, updates=False, wait=LONG_POLL))["state"] not in FINAL_STATES:
        time.sleep(0.25)  # answered early: the command runs in another agent that shares the store
    return command


def _emit_command(client: AgentClient, command_id: str, output: Output) -> dict[str, Any]:
    """The command with every update printed for a script: JSON as the pages arrive, one at a time."""
    if output is Output.JSON:
        return emit_json_pages(console, client.command_pages(command_id), "updates")
    command = client.command(command_id)
    emit_data(console, output, command)
    return command


@app.command()
def cancel(
    command_id: Annotated[
        str, typer.Argument(help="The command to cancel", autocompletion=completion_cmd.complete_command_id)
    ],
    api: ApiOption = None,
) -> None:
    """Cancel a command: nothing new starts; what is in flight finishes."""
    from rich.text import Text

    with _client(api) as client:
        command = _call(client.cancel, command_id)
    console.print(Text.assemble(f"command {command_id}: ", styled_state(command["state"])))


# ---------------------------------------------------------------- status / inventory


@status_app.command("command")
def status_command(
    command_id: Annotated[
        str | None,
        typer.Argument(
            help="Command id; the latest commands when omitted",
            autocompletion=completion_cmd.complete_command_id,
        ),
    ] = None,
    watch: WatchOption = False,
    quiet: QuietOption = False,
    output: OutputOption = Output.HUMAN,
    api: ApiOption = None,
) -> None:
    """Show a command and its resource updates (or the latest commands).

    \b
    Examples:
      formae status command                       # the latest commands
      formae status command 01J8Z... --watch      # follow one until it ends
      formae status command 01J8Z... -o json      # for scripts
    """
    with _client(api) as client:
        if command_id is None:
            commands = _call(client.commands)
            if not emit_data(console, output, commands):
                rows = [
                    (c["id"], c["kind"], c["mode"], styled_state(c["state"]), c["message"], c["created_at"])
                    for c in commands
                ]
                columns: list[ColumnSpec] = [
                    Column("id", key=True),
                    "kind",
                    "mode",
                    "state",
                    Column("message", drop=2),
                    Column("created", drop=1),
                ]
                print_table(console, None, columns, rows, wide=output is Output.WIDE)
            return
        if watch or quiet:
            _finish(client, command_id, output, quiet)
            return
        if not output.for_people:
            command = _conventionally(lambda: _emit_command(client, command_id, output))
        else:
            command = _call(client.command, command_id)
            command_table(command).print(console, wide=output is Output.WIDE)
            console.print(command["message"], markup=False, highlight=False)
        if command["state"] in (CommandState.FAILED, CommandState.CANCELED):
            raise typer.Exit(EXIT_FAILED)


@inventory_app.command("resources")
def inventory_resources(
    query: Annotated[
        str,
        typer.Option(
            "--query",
            help="e.g. 'stack:net type:FakeAWS::*' or 'managed:false'",
            metavar="QUERY",
            autocompletion=completion_cmd.complete_query,
        ),
    ] = "",
    output: OutputOption = Output.HUMAN,
    api: ApiOption = None,
) -> None:
    """Resources the agent manages."""
    with _client(api) as client:
        resources = _call(client.inventory, "resources", query)
    if not emit_data(console, output, resources):
        rows = [
            (
                r["stack"],
                r["type"],
                r["label"],
                r["target"],
                r["native_id"],
                r["version"],
                r.get("drift") or "",
                "yes" if r.get("managed", True) else "no",
                r.get("command_id"),
                r.get("created_at"),
            )
            for r in resources
        ]
        columns = [
            Column("stack", key=True),
            Column("type", key=True),
            Column("label", key=True),
            Column("target", key=True, drop=2),
            Column("native id", key=True, drop=1),
            Column("version", drop=3),
            Column("drift", drop=4),
            Column("managed", wide=True),
            Column("last command", key=True, wide=True),
            Column("since", wide=True),
        ]
        print_table(console, None, columns, rows, wide=output is Output.WIDE)


@inventory_app.command("stacks")
def inventory_stacks(output: OutputOption = Output.HUMAN, api: ApiOption = None) -> None:
    with _client(api) as client:
        stacks = _call(client.inventory, "stacks")
    if not emit_data(console, output, stacks):
        rows = [(s["label"], s["description"], _policies(s), s.get("expires_at")) for s in stacks]
        columns: list[ColumnSpec] = [
            Column("label", key=True),
            "description",
            "policies",
            Column("expires", drop=1),
        ]
        print_table(console, None, columns, rows)


def _policies(stack: dict[str, Any]) -> str:
    """``ttl 3600s, auto-reconcile every 300s``: a stack's policies as a person reads them."""
    shown = []
    for policy in stack.get("policies") or []:
        if policy.get("type") == "ttl":
            shown.append(f"ttl {policy.get('ttl_seconds'):g}s")
        elif policy.get("type") == "auto-reconcile":
            shown.append(f"auto-reconcile every {policy.get('interval_seconds'):g}s")
    return ", ".join(shown)


@inventory_app.command("targets")
def inventory_targets(output: OutputOption = Output.HUMAN, api: ApiOption = None) -> None:
    with _client(api) as client:
        targets = _call(client.inventory, "targets")
    if not emit_data(console, output, targets):
        rows = [(t["label"], t["namespace"], t["config"]) for t in targets]
        columns = [Column("label", key=True), Column("namespace", key=True), Column("config", drop=1)]
        print_table(console, None, columns, rows, wide=output is Output.WIDE)


# ---------------------------------------------------------------- plugins


@plugin_app.command("list")
def plugin_list(output: OutputOption = Output.HUMAN, api: ApiOption = None) -> None:
    """Plugins registered with the agent, local and remote."""
    with _client(api) as client:
        plugins = _call(client.plugins)
    if not emit_data(console, output, plugins):
        from formae.cli.plugins_view import print_plugins

        print_plugins(console, plugins, wide=output is Output.WIDE)


@token_app.command("create")
def token_create(
    namespace: Annotated[
        list[str],
        typer.Option(
            "--namespace",
            "-n",
            help="A namespace the plugin may claim",
            autocompletion=completion_cmd.complete_namespace,
        ),
    ],
    ttl: Annotated[int, typer.Option(help="Seconds the token stays valid")] = 3600,
    agent_address: Annotated[
        str | None, typer.Option(help="host:port the plugin's host dials (default: the agent's)")
    ] = None,
    api: ApiOption = None,
) -> None:
    """Create a one-time token; start the remote plugin with FORMAE_JOIN_TOKEN=<token>.

    Only the token goes to stdout (for $(...)); what it allows goes to stderr. It is shown once.
    """
    with _client(api) as client:
        created = _call(client.create_join_token, namespace, ttl, agent_address)
    errors.print(
        f"join token {created['id']} for {', '.join(created['namespaces'])}, "
        f"dialling {created['agent_address']}, valid until {created['expires_at']}; usable once",
        highlight=False,
        markup=False,
    )
    print(created["token"])


# ---------------------------------------------------------------- agent


@agent_app.command("start")
def agent_start(
    background: Annotated[bool, typer.Option("--background", "-d", help="Run as a daemon")] = False,
    home: Annotated[Path | None, typer.Option(help="Agent home [env FORMAE_HOME]")] = None,
    api_address: Annotated[str | None, typer.Option(help="host:port of the REST API")] = None,
    plugin_address: Annotated[str | None, typer.Option(help="host:port plugins connect to")] = None,
    store_url: Annotated[
        str | None, typer.Option(help="sqlite:///… or postgresql://… [env FORMAE_STORE_URL]")
    ] = None,
    plugin_tls: Annotated[
        bool | None,
        typer.Option("--plugin-tls/--no-plugin-tls", help="Mutual TLS with plugins [default: on]"),
    ] = None,
    advertise: Annotated[
        str | None, typer.Option(help="host:port plugins on other hosts dial, put in join tokens")
    ] = None,
    sync_interval: Annotated[
        str | None, typer.Option(help="Seconds between syncs, 0 off [env FORMAE_SYNC_INTERVAL; 300]")
    ] = None,
    discovery_interval: Annotated[
        str | None, typer.Option(help="Seconds between discoveries, 0 off [env FORMAE_DISCOVERY_INTERVAL; 0]")
    ] = None,
    api_tls: Annotated[
        bool | None,
        typer.Option("--api-tls/--no-api-tls", help="TLS on the REST API [default: on beyond loopback]"),
    ] = None,
    insecure_api: Annotated[
        bool, typer.Option("--insecure-api", help="Serve plain HTTP beyond loopback (warned at every start)")
    ] = False,
    api_name: Annotated[
        list[str] | None,
        typer.Option("--api-name", help="A name clients reach the API by (Host header, TLS certificate)"),
    ] = None,
    metrics: Annotated[
        bool | None,
        typer.Option(
            "--metrics/--no-metrics", help="Serve /metrics and /api/v1/stats [env FORMAE_METRICS; on]"
        ),
    ] = None,
    tracing: Annotated[
        bool | None,
        typer.Option("--tracing/--no-tracing", help="Export OpenTelemetry traces [env FORMAE_TRACING; off]"),
    ] = None,
    tracing_endpoint: Annotated[
        str | None,
        typer.Option(
            help="OTLP/HTTP base URL [env OTEL_EXPORTER_OTLP_ENDPOINT; http://localhost:4318]", metavar="URL"
        ),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Configuration file [env FORMAE_CONFIG; {home}/formae.pkl]", metavar="FILE"
        ),
    ] = None,
    policy_interval: Annotated[
        str | None,
        typer.Option(help="Seconds between checks of stack policies, 0 off [env FORMAE_POLICY_INTERVAL; 5]"),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning, error [env FORMAE_LOG_LEVEL; info]")
    ] = None,
    log_format: Annotated[
        str | None, typer.Option(help="text or json (one object per line) [env FORMAE_LOG_FORMAT; text]")
    ] = None,
    log_file: Annotated[Path | None, typer.Option(hidden=True)] = None,
) -> None:
    """Start the agent (in the foreground unless --background).

    Settings come from flags, then the environment, then the configuration file, then the defaults
    (docs/operations.md); ``formae agent config show`` prints what won and why.
    """
    from formae.agent.config import AgentConfig, ConfigError
    from formae.cli import agent_cmd

    flags = {
        "api_address": api_address,
        "plugin_address": plugin_address,
        "store_url": store_url,
        "plugin_tls": None if plugin_tls is None else str(plugin_tls),
        "advertised_plugin_address": advertise,
        "sync_interval": sync_interval,
        "discovery_interval": discovery_interval,
        "policy_interval": policy_interval,
        "api_tls": None if api_tls is None else str(api_tls),
        "insecure_api": str(insecure_api) if insecure_api else None,
        "api_names": ",".join(api_name) if api_name else None,
        "log_level": log_level,
        "log_format": log_format,
        "metrics_enabled": None if metrics is None else str(metrics),
        "tracing_enabled": None if tracing is None else str(tracing),
        "tracing_endpoint": tracing_endpoint,
    }

    def read() -> AgentConfig:
        where = str(home) if home else None
        return AgentConfig.load(os.environ, where, str(config_file) if config_file else None, flags)

    try:
        config = read()
    except ConfigError as error:
        _fail(str(error), EXIT_USAGE)
    if not background:
        raise typer.Exit(agent_cmd.run_foreground(config, log_file, read))
    try:
        argv = agent_cmd.passed_on(config, config_file, flags)
        info = agent_cmd.start_background(config, argv, store_url)
    except RuntimeError as error:
        _fail(str(error), EXIT_FAILED)
    console.print(
        f"agent started (pid {info['pid']}) at {info['api_url']}; log: {config.log_file}", markup=False
    )


@agent_app.command("stop")
def agent_stop(
    home: Annotated[Path | None, typer.Option(help="Agent home [env FORMAE_HOME]")] = None,
) -> None:
    """Stop the background agent (and its plugins)."""
    from formae.cli import agent_cmd

    pid = agent_cmd.stop_agent(home or default_home(os.environ))
    console.print("no agent running" if pid is None else f"agent (pid {pid}) stopped")


@agent_app.command("status")
def agent_status(
    home: Annotated[Path | None, typer.Option(help="Agent home [env FORMAE_HOME]")] = None,
    output: OutputOption = Output.HUMAN,
) -> None:
    """Whether an agent is running, where, and how many plugins it has."""
    from formae.cli import agent_cmd

    info = agent_cmd.alive_agent(home or default_home(os.environ))
    health = agent_cmd.agent_health(str(info["api_url"]), api_ca(home)) if info else None
    status = {"running": info is not None, **(info or {}), "health": health}
    if not emit_data(console, output, status):
        if info is None:
            console.print("agent is not running")
        else:
            plugins = (
                f"{health['healthy_plugins']}/{health['plugins']} plugins healthy"
                if health
                else "not answering"
            )
            console.print(f"agent running (pid {info['pid']}) at {info['api_url']}: {plugins}")
            reasons = health.get("reasons") if health else None
            for reason in reasons if isinstance(reasons, list) else []:
                console.print(f"degraded: {reason}", markup=False, highlight=False)
    if info is None:
        raise typer.Exit(EXIT_NO_AGENT)


sync_cmd.register(app, status_app, _client, _call, console)
graph_cmd.register(app, _client, _call, _load, _fail)
status_agent_cmd.register(status_app, _client, _call, console)
