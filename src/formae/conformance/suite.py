"""The checks, in the order they run, and ``run_conformance`` which runs them against an executable.

Three plugin processes are started: the first is taken through announcement, schemas, heartbeats
and every operation, then stopped with SIGTERM; the second has its stream ended by the agent; the
third loses its parent (the agent) to SIGKILL. Each must exit, and the first two with code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import semver

from formae.agent.registry import RegisteredPlugin
from formae.conformance.endpoint import HEARTBEAT_INTERVAL, AgentEndpoint
from formae.conformance.lifecycle import Lifecycle
from formae.conformance.process import PluginProcess
from formae.conformance.report import CheckFailed, Outcome, Report, Scenario
from formae.wire.types import JsonObject

ANNOUNCE_WITHIN = 10.0
"""Seconds from start to accepted announcement: the agent's handshake limit."""
EXIT_WITHIN = 5.0
TYPE_PATTERN = re.compile(r"^[A-Za-z0-9]+(::[A-Za-z0-9]+)+$")


@dataclass
class _Run:
    argv: list[str]
    scenarios: list[Scenario]
    report: Report
    workdir: Path
    described: dict[str, object] = field(default_factory=dict)
    target_config: JsonObject = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return str(self.described.get("namespace", ""))

    @property
    def name(self) -> str:
        return str(self.described.get("name", "plugin"))


def run_conformance(
    argv: list[str], scenarios: list[Scenario], target_config: JsonObject | None = None
) -> Report:
    """Check the plugin started by ``argv`` (an executable and its arguments).

    ``target_config`` is the target's ``config`` sent with every request (a region, a host).
    """
    report = Report(" ".join(argv))
    with tempfile.TemporaryDirectory(prefix="formae-conformance-") as directory:
        run = _Run(argv, scenarios, report, Path(directory), target_config=target_config or {})
        log = run.workdir / "plugin.log"
        with _agent_log_to(log):
            if _check(report, "describe", lambda: _describe(run)):
                asyncio.run(_against_endpoint(run))
        report.log = log.read_text(errors="replace") if log.exists() else ""
    return report


@contextlib.contextmanager
def _agent_log_to(path: Path) -> Iterator[None]:
    """The stand-in agent's log lines (refusals, drops) go with the plugin's output, not to the terminal."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s conformance agent: %(message)s"))
    agent_log = logging.getLogger("formae.agent")
    agent_log.addHandler(handler)
    agent_log.setLevel(logging.INFO)
    try:
        yield
    finally:
        agent_log.removeHandler(handler)
        handler.close()


def _check(report: Report, name: str, check: Callable[[], str | None]) -> bool:
    """Run one check: its return is a PASS detail, CheckFailed a FAIL, ``Skip`` a SKIP."""
    try:
        detail = check()
    except _Skip as skip:
        report.add(name, Outcome.SKIP, str(skip))
        return True
    except (CheckFailed, AssertionError) as failed:
        report.add(name, Outcome.FAIL, str(failed))
        return False
    report.add(name, Outcome.PASS, detail or "")
    return True


async def _acheck(report: Report, name: str, check: Callable[[], Awaitable[str | None]]) -> bool:
    try:
        detail = await check()
    except _Skip as skip:
        report.add(name, Outcome.SKIP, str(skip))
        return True
    except (CheckFailed, AssertionError) as failed:
        report.add(name, Outcome.FAIL, str(failed))
        return False
    except Exception as error:  # a check must never take the kit down: the plugin did something odd
        report.add(name, Outcome.FAIL, f"{type(error).__name__}: {error}")
        return False
    report.add(name, Outcome.PASS, detail or "")
    return True


class _Skip(Exception):
    pass


def _describe(run: _Run) -> str:
    try:
        done = subprocess.run(
            [*run.argv, "--describe"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CheckFailed(f"cannot run {run.argv[0]} --describe: {error}") from None
    if done.returncode != 0:
        raise CheckFailed(f"--describe exited {done.returncode}: {done.stderr.strip()[-500:]}")
    try:
        described = json.loads(done.stdout)
    except ValueError:
        raise CheckFailed(f"--describe printed something other than JSON: {done.stdout[:200]!r}") from None
    if not isinstance(described, dict):
        raise CheckFailed("--describe must print one JSON object")
    missing = [k for k in ("name", "namespace", "version", "types") if not described.get(k)]
    if missing:
        raise CheckFailed(f"--describe does not say {', '.join(missing)}")
    if "/" in str(described["name"]) or not semver.Version.is_valid(str(described["version"])):
        raise CheckFailed("name must not contain '/' and version must be a semantic version")
    run.described = described
    return f"{described['name']} {described['version']}, namespace {described['namespace']}"


async def _against_endpoint(run: _Run) -> None:
    async with AgentEndpoint(run.workdir) as endpoint:
        await _main_process(run, endpoint)
        await _stream_end_process(run, endpoint)
        await _parent_death_process(run, endpoint)


def _start(run: _Run, endpoint: AgentEndpoint) -> PluginProcess:
    process = PluginProcess(run.argv, endpoint.environment(run.name), run.workdir / "plugin.log")
    endpoint.children.add(process.pid)
    return process


async def _announced(run: _Run, endpoint: AgentEndpoint, process: PluginProcess) -> RegisteredPlugin:
    try:
        plugin = await endpoint.registered(run.namespace, ANNOUNCE_WITHIN)
    except TimeoutError:
        exited = process.wait_exit(0)
        why = f"it exited with {exited}" if exited is not None else "it is still running"
        raise CheckFailed(
            f"no accepted announcement of {run.namespace} within {ANNOUNCE_WITHIN:.0f}s; {why}"
        ) from None
    if plugin.pid != process.pid:
        raise CheckFailed(
            f"announced pid {plugin.pid}, but the process started is {process.pid} (a wrapper without exec?)"
        )
    return plugin


async def _main_process(run: _Run, endpoint: AgentEndpoint) -> None:
    process = _start(run, endpoint)
    try:
        registered: list[RegisteredPlugin] = []

        async def announce() -> str:
            started = time.monotonic()
            registered.append(await _announced(run, endpoint, process))
            took = time.monotonic() - started
            return f"accepted {took:.2f}s after start, protocol v{registered[0].protocol_version}"

        if not await _acheck(run.report, "announce within limits", announce):
            return
        plugin = registered[0]
        _check(run.report, "schemas valid", lambda: _schemas(run, plugin))
        await _acheck(run.report, "heartbeats", lambda: _heartbeats(endpoint, plugin))
        types = [s.type for s in plugin.schemas]
        await Lifecycle(endpoint, run.namespace, types, run.report, run.target_config).run(run.scenarios)
        await _acheck(run.report, "SIGTERM exits 0", lambda: _sigterm(process))
    finally:
        process.close()


def _schemas(run: _Run, plugin: RegisteredPlugin) -> str:
    problems: list[str] = []
    for schema in plugin.schemas:
        if not TYPE_PATTERN.match(schema.type):
            problems.append(f"{schema.type!r} is not Namespace::Kind or Namespace::Service::Kind")
        if not schema.identifier:
            problems.append(f"{schema.type} names no identifier property")
        if len(set(schema.create_only)) != len(schema.create_only):
            problems.append(f"{schema.type} lists a create-only property twice")
        properties = schema.json_schema.get("properties", {})
        if schema.json_schema and (
            schema.json_schema.get("type", "object") != "object" or not isinstance(properties, dict)
        ):
            problems.append(f"{schema.type}'s JSON Schema does not describe an object")
    if not plugin.schemas:
        problems.append("the plugin announces no resource type")
    types = run.described.get("types")
    described = sorted(str(t) for t in types) if isinstance(types, list) else []
    announced = sorted(s.type for s in plugin.schemas)
    if described != announced:
        problems.append(f"--describe lists {described}, the announcement {announced}")
    if problems:
        raise CheckFailed("; ".join(problems))
    return f"{len(plugin.schemas)} types"


async def _heartbeats(endpoint: AgentEndpoint, plugin: RegisteredPlugin) -> str:
    if plugin.heartbeat_interval <= 0:
        raise CheckFailed("heartbeat_interval_ms is 0: announce the interval you heartbeat at")
    await asyncio.sleep(HEARTBEAT_INTERVAL * 3 + 0.2)
    if not plugin.healthy:
        raise CheckFailed(f"dropped by the agent: {plugin.status_reason}")
    silent = time.monotonic() - plugin.last_heartbeat
    if silent > HEARTBEAT_INTERVAL * 2:
        raise CheckFailed(f"no heartbeat for {silent:.1f}s (interval {HEARTBEAT_INTERVAL}s)")
    return f"every {plugin.heartbeat_interval:.2f}s"


async def _sigterm(process: PluginProcess) -> str:
    started = time.monotonic()
    process.signal(signal.SIGTERM)
    code = await asyncio.to_thread(process.wait_exit, EXIT_WITHIN)
    if code is None:
        raise CheckFailed(f"still running {EXIT_WITHIN:.0f}s after SIGTERM")
    if code != 0:
        raise CheckFailed(f"exited with {code}")
    return f"exited 0 in {time.monotonic() - started:.2f}s"


async def _stream_end_process(run: _Run, endpoint: AgentEndpoint) -> None:
    process = _start(run, endpoint)
    try:

        async def check() -> str:
            plugin = await _announced(run, endpoint, process)
            endpoint.drop(plugin)
            code = await asyncio.to_thread(process.wait_exit, EXIT_WITHIN)
            if code is None:
                raise CheckFailed(
                    f"a spawned plugin must exit when its agent ends the stream; ran {EXIT_WITHIN:.0f}s on"
                )
            if code != 0:
                raise CheckFailed(f"exited with {code} instead of 0")
            return "exited 0"

        await _acheck(run.report, "exits 0 when its agent ends the stream", check)
    finally:
        process.close()


async def _parent_death_process(run: _Run, endpoint: AgentEndpoint) -> None:
    process = _start(run, endpoint)
    try:

        async def check() -> str:
            await _announced(run, endpoint, process)
            started = time.monotonic()
            process.kill_parent()
            if not await asyncio.to_thread(process.wait_gone, EXIT_WITHIN):
                raise CheckFailed(f"still running {EXIT_WITHIN:.0f}s after its agent was killed (SIGKILL)")
            return f"exited {time.monotonic() - started:.2f}s after its agent was killed"

        await _acheck(run.report, "dies with its agent", check)
    finally:
        process.close()
