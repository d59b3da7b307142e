"""The plugin process's entry point: ``formae.plugin.run(MyPlugin())``."""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn

from formae.plugin._runtime import serve
from formae.plugin.base import ResourcePlugin
from formae.plugin.settings import PluginSettings, SettingsError
from formae.telemetry.tracing import Tracing, tracer_provider

_PR_SET_PDEATHSIG = 1


def run(plugin: ResourcePlugin, argv: list[str] | None = None) -> NoReturn:
    """Serve ``plugin`` to the agent named in the environment until stopped; never returns.

    ``--describe`` prints the plugin's name, namespace and version as JSON and exits, which is
    how ``formae plugin install`` learns where to put an executable.
    """
    args = sys.argv[1:] if argv is None else argv
    if "--describe" in args:
        print(json.dumps(describe(plugin)))
        sys.exit(0)
    _configure_logging(plugin)
    try:
        settings = PluginSettings.from_env(os.environ, default_node=plugin.name)
    except SettingsError as error:
        print(f"{plugin.name}: {error}", file=sys.stderr)
        sys.exit(2)
    if settings.parent_pid is not None:
        _die_with_parent(settings.parent_pid)
    try:
        code = asyncio.run(_main(plugin, settings))
    except SettingsError as error:  # found out only when it matters, e.g. an unwritable state directory
        print(f"{plugin.name}: {error}", file=sys.stderr)
        code = 2
    sys.exit(code)


def describe(plugin: ResourcePlugin) -> dict[str, object]:
    """What ``--describe`` prints: who it is, and the schemas it announces (for ``formae schema pkl``)."""
    schemas = plugin.schemas()
    return {
        "name": plugin.name,
        "namespace": plugin.namespace,
        "version": plugin.version,
        "types": [schema.type for schema in schemas],
        "schemas": [
            {
                "type": schema.type,
                "identifier": schema.identifier,
                "create_only": list(schema.create_only),
                "read_only": list(schema.read_only),
                "json_schema": schema.json_schema,
            }
            for schema in schemas
        ],
    }


async def _main(plugin: ResourcePlugin, settings: PluginSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    tracing = _tracing(settings)
    try:
        return await serve(plugin, settings, stop, tracing)
    finally:
        await asyncio.to_thread(tracing.shutdown)  # the last spans are exported before the exit


def _tracing(settings: PluginSettings) -> Tracing:
    """The plugin's tracer provider, when its environment asks for one (``FORMAE_TRACING``).

    It is also made the process's global provider, on purpose: a plugin author's own spans
    (``opentelemetry.trace.get_tracer(__name__)``) and the instrumentations of the libraries a
    plugin uses (botocore, asyncpg…) find their provider there, and the process is the SDK's.
    OpenTelemetry is imported only then: a plugin that does not trace pays nothing at its spawn.
    """
    if settings.tracing is None:
        return Tracing.off()
    from opentelemetry import trace

    provider = tracer_provider(settings.tracing)
    trace.set_tracer_provider(provider)
    return Tracing(provider, scope="formae.plugin")


def _configure_logging(plugin: ResourcePlugin) -> None:
    level = os.environ.get("FORMAE_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else "INFO",
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {plugin.name}: %(message)s",
    )


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGTERM us when the agent that spawned us dies, even by SIGKILL.

    The check after the call closes the race where the agent died before we asked.
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == parent_pid:
        return
    if parent_pid in _ancestors(os.getppid()):
        print(
            f"this plugin's parent (pid {os.getppid()}) is not the agent (pid {parent_pid}) but a wrapper "
            "between them: end the wrapper script with `exec` so that the agent's signals reach the plugin",
            file=sys.stderr,
        )
        return
    print("the agent that started this plugin is gone; exiting", file=sys.stderr)
    sys.exit(0)


def _ancestors(pid: int) -> list[int]:
    """``pid`` and its parents up to (not including) init, from /proc."""
    found: list[int] = []
    while pid > 1 and len(found) < 16:
        found.append(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rpartition(")")[2].split()[1])
    return found
