"""PluginProcessManager: starts the plugins installed on this host and keeps them running.

It only manages local processes; it never registers anything. A spawned plugin reaches the
registry the same way a remote one does, by announcing itself. Each child gets one supervising
task that forwards its output into the agent's log and restarts it after a crash, backing off
exponentially up to a bound. Children die with the agent: on a clean stop they are terminated,
and on a SIGKILL of the agent the SDK's parent-death signal and the closed stream end them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from formae.agent.plugin_env import PluginGrant, minimal_environment
from formae.agent.plugin_manager import InstalledPlugin
from formae.agent.process_status import ProcessStatus
from formae.agent.registry import Location
from formae.backoff import exponential_delay
from formae.logs import bound
from formae.telemetry.metrics import AgentMetrics

log = logging.getLogger("formae.agent.processes")

_PASSED_ON = frozenset({"FORMAE_LOG_LEVEL"})
"""The agent's own FORMAE_* settings are not its children's, except these."""

EXIT_REFUSED = 78
"""The SDK's exit code when the agent refused it: restarting cannot help."""


@dataclass(frozen=True)
class RestartPolicy:
    """Restart forever, backing off exponentially up to ``max_delay``: a plugin is never given up on.

    A plugin that crashes for an hour (a missing credential, a full disk) must come back on its own
    once the cause is fixed; the backoff keeps its crashes cheap and ``formae plugin list`` shows them.
    """

    initial_delay: float = 0.1
    max_delay: float = 60.0
    stable_after: float = 30.0
    """A child that ran this long before dying starts its backoff afresh."""

    def delay(self, failures: int) -> float:
        return exponential_delay(failures, self.initial_delay, self.max_delay)


class Grants(Protocol):
    """Where a plugin's grant is found by its name: a dict, or ``GrantFiles`` reading them at each spawn."""

    def get(self, name: str, /) -> PluginGrant | None: ...


class _NoGrants:
    def get(self, name: str, /) -> PluginGrant | None:
        return None


@dataclass(frozen=True)
class PluginEnvironment:
    """What every spawned plugin is told: where the agent is and the secret to prove itself with."""

    agent_address: str
    cookie: str
    heartbeat_interval: float
    extra: Mapping[str, str]
    credentials: Callable[[str], Mapping[str, str]] | None = None
    """The certificate files' environment for a plugin name, when the agent runs with TLS."""
    grants: Grants = field(default_factory=lambda: _NoGrants())
    """What each plugin, by name, is granted beyond the minimal environment (``plugin_env``)."""

    def __repr__(self) -> str:  # keeps the cookie out of any log line
        return f"PluginEnvironment(agent_address={self.agent_address!r})"

    def for_child(self, name: str, node: str) -> dict[str, str]:
        """The base, the plugin's grant, and the protocol's variables: never the agent's whole environment."""
        inherited = {k: v for k, v in os.environ.items() if k in _PASSED_ON}
        grant = self.grants.get(name)
        return {
            **minimal_environment(os.environ),
            **(grant.environment(os.environ) if grant else {}),
            **inherited,
            **self.extra,
            **(self.credentials(name) if self.credentials else {}),
            "FORMAE_AGENT_NODE": self.agent_address,
            "FORMAE_PLUGIN_NODE": node,
            "FORMAE_NETWORK_COOKIE": self.cookie,
            "FORMAE_HEARTBEAT_INTERVAL": str(self.heartbeat_interval),
            "FORMAE_PARENT_PID": str(os.getpid()),
        }


class PluginProcessManager:
    def __init__(
        self,
        plugins: list[InstalledPlugin],
        environment: PluginEnvironment,
        policy: RestartPolicy | None = None,
        stop_grace: float = 3.0,
        *,
        stay_open: bool = False,
        policy_for: Callable[[str], RestartPolicy] | None = None,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self._metrics = metrics or AgentMetrics()
        self._stay_open = stay_open
        """Keep ``run`` going until ``stop``, even with nothing to supervise: ``start`` may add plugins."""
        self._plugins = plugins
        self._environment = environment
        self._policy = policy or RestartPolicy()
        self._policy_for = policy_for or (lambda _name: self._policy)
        """A plugin's restart policy by name, asked at each exit: a reload applies to the next restart."""
        self._stop_grace = stop_grace
        self._children: dict[int, tuple[str, asyncio.subprocess.Process]] = {}
        self._stopping = False
        self._stopped = asyncio.Event()
        self._host = socket.gethostname()
        self._status = {self._node(p): ProcessStatus(p.name, str(p.version), self._node(p)) for p in plugins}
        """By node: each supervised process as its supervisor last saw it."""
        self._supervised: dict[str, _Supervised] = {}
        self._supervisors: asyncio.TaskGroup | None = None

    def spawns(self, node: str) -> bool:
        """Whether ``node`` is the name this manager gives one of its children (reserved for it)."""
        return node in self._supervised or any(node == self._node(plugin) for plugin in self._plugins)

    def running(self) -> dict[str, tuple[str, InstalledPlugin]]:
        """By plugin name: the node and install of each plugin supervised and not being retired."""
        return {s.plugin.name: (node, s.plugin) for node, s in self._supervised.items() if not s.retiring}

    def start(self, plugin: InstalledPlugin) -> str:
        """Supervise ``plugin`` from now on (while ``run`` runs); its node name.

        A second version of a running plugin gets a node name of its own, so that both can be
        registered while the old one drains.
        """
        if self._supervisors is None:
            raise RuntimeError("start() before run()")
        node = self._node(plugin)
        if node in self._supervised:
            node = f"{plugin.name}-v{plugin.version}@{self._host}"
        entry = _Supervised(plugin)
        self._supervised[node] = entry
        entry.task = self._supervisors.create_task(self._supervise(plugin, node), name=f"supervise {node}")
        return node

    async def retire(self, node: str) -> None:
        """Stop supervising ``node``: SIGTERM its process (SIGKILL after the grace) and wait for it."""
        entry = self._supervised.get(node)
        if entry is None:
            return
        entry.retiring = True
        processes = [process for child_node, process in self._children.values() if child_node == node]
        await self._terminate(processes)
        if entry.task is not None:
            entry.task.cancel()  # it may be sleeping before a restart
            await asyncio.gather(entry.task, return_exceptions=True)
        self._supervised.pop(node, None)
        self._status.pop(node, None)

    def locate(self, node: str, pid: int) -> Location:
        """LOCAL when ``(node, pid)`` is a child this manager spawned and still runs, or its descendant.

        A descendant means a wrapper script that started the plugin without ``exec``: it is logged
        with what to change, because the wrapper, not the plugin, is what the agent signals and watches.
        """
        child = self._children.get(pid)
        if child is not None and child[0] == node:
            return Location.LOCAL
        for child_pid, (child_node, _) in self._children.items():
            if child_node == node and child_pid in _ancestors(pid):
                log.warning(
                    "Plugin %s announced pid %d, but the agent spawned pid %d, its ancestor: the plugin "
                    "executable is a wrapper that starts the plugin without `exec`. Treating it as local; "
                    "end the wrapper with `exec /absolute/path/to/interpreter plugin …` so that the agent's "
                    "signals and exit codes reach the plugin itself (protocol.md §11)",
                    node,
                    pid,
                    child_pid,
                )
                return Location.LOCAL
        return Location.REMOTE

    def _retiring(self, node: str) -> bool:
        entry = self._supervised.get(node)
        return entry is None or entry.retiring

    def _node(self, plugin: InstalledPlugin) -> str:
        return f"{plugin.name}@{self._host}"

    def statuses(self) -> list[ProcessStatus]:
        """Each installed plugin's process, as its supervisor last saw it."""
        return sorted(self._status.values(), key=lambda s: s.name)

    def children(self) -> dict[int, str]:
        return {pid: node for pid, (node, _) in self._children.items()}

    async def run(self) -> None:
        """Supervise every installed plugin, and those ``start`` adds, until ``stop``.

        Without ``stay_open`` it returns as soon as every supervisor has (all children given up on).
        """
        async with asyncio.TaskGroup() as supervisors:
            self._supervisors = supervisors
            for plugin in self._plugins:
                self.start(plugin)
            if self._stay_open:
                await self._stopped.wait()

    async def stop(self) -> None:
        """Terminate every child: SIGTERM, then SIGKILL whatever outlives the grace period."""
        self._stopping = True
        self._stopped.set()
        await self._terminate([process for _, process in self._children.values()])

    async def _terminate(self, processes: list[asyncio.subprocess.Process]) -> None:
        for process in processes:
            _signal(process, signal.SIGTERM)
        if not processes:
            return
        _, late = await asyncio.wait(
            [asyncio.create_task(p.wait()) for p in processes], timeout=self._stop_grace
        )
        for process in processes:
            if process.returncode is None:
                log.warning(
                    "plugin pid=%d ignored SIGTERM for %.1fs; killing it", process.pid, self._stop_grace
                )
                _signal(process, signal.SIGKILL)
        if late:
            await asyncio.gather(*late, return_exceptions=True)

    async def _supervise(self, plugin: InstalledPlugin, node: str) -> None:
        status = self._status.get(node)
        if status is None or status.version != str(plugin.version):  # a node name another version had
            status = self._status[node] = ProcessStatus(plugin.name, str(plugin.version), node)
        failures = 0
        try:
            while not self._stopping:
                started = time.monotonic()
                code = await self._run_once(plugin, node, status)
                if self._stopping or self._retiring(node):
                    return
                policy = self._policy_for(plugin.name)
                failures = 1 if time.monotonic() - started > policy.stable_after else failures + 1
                if code == EXIT_REFUSED:
                    status.exited(code, failures, None)
                    log.error(
                        "plugin %s was refused by this agent (see above); not restarting it", plugin.name
                    )
                    return
                delay = policy.delay(failures)
                status.exited(code, failures, delay)
                log.warning(
                    "Plugin process exited name=%s code=%s; restarting in %.2fs%s",
                    plugin.name,
                    code,
                    delay,
                    f" (crash-looping: {failures} quick exits in a row)" if status.crash_looping else "",
                )
                await asyncio.sleep(delay)
                self._metrics.plugin_restarted(plugin.name)
                status.retrying()
        finally:
            status.stopped()

    async def _run_once(self, plugin: InstalledPlugin, node: str, status: ProcessStatus) -> int | None:
        try:
            process = await asyncio.create_subprocess_exec(
                str(plugin.executable),
                env=self._environment.for_child(plugin.name, node),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as error:
            log.error("cannot start plugin %s from %s: %s", plugin.name, plugin.executable, error)
            return None
        self._children[process.pid] = (node, process)
        status.started(process.pid)
        log.info(
            "Plugin process started name=%s version=%s pid=%d node=%s",
            plugin.name,
            plugin.version,
            process.pid,
            node,
        )
        if self._stopping:  # stop() ran while we spawned it, so it did not see this child
            _signal(process, signal.SIGTERM)
        try:
            async with asyncio.TaskGroup() as output:
                output.create_task(_forward(process.stdout, plugin.name, node, process.pid))
                output.create_task(_forward(process.stderr, plugin.name, node, process.pid, status.wrote))
            return await process.wait()
        except asyncio.CancelledError:
            _signal(process, signal.SIGTERM)
            raise
        finally:
            self._children.pop(process.pid, None)


async def _forward(
    stream: asyncio.StreamReader | None,
    name: str,
    node: str,
    pid: int,
    keep: Callable[[str], None] | None = None,
) -> None:
    """Copy a child's output into the agent's log, one record per line, tagged with the plugin.

    The text keeps its ``[name pid=N]`` prefix; the record carries ``plugin``, ``node`` and ``pid``
    as fields too, so a JSON line says whose it is without parsing the message.
    """
    if stream is None:
        return
    plugin_log = logging.getLogger(f"formae.plugin.{name}")
    with bound(plugin=name, node=node, pid=pid):
        while line := await _next_line(stream):
            text = line.decode(errors="replace").rstrip()
            plugin_log.info("[%s pid=%d] %s", name, pid, text)
            if keep is not None:
                keep(text)


async def _next_line(stream: asyncio.StreamReader) -> bytes:
    """The next line, or a buffer-full piece of a longer one; b"" at the end of the output.

    ``readline`` raises on a line longer than the buffer, which would end the supervisor: a plugin
    printing a long line without a newline must not be able to stop the agent.
    """
    try:
        return await stream.readuntil(b"\n")
    except asyncio.IncompleteReadError as end:
        return end.partial
    except asyncio.LimitOverrunError as long_line:
        return await stream.readexactly(long_line.consumed)


@dataclass
class _Supervised:
    plugin: InstalledPlugin
    retiring: bool = False
    task: asyncio.Task[None] | None = None


def _signal(process: asyncio.subprocess.Process, signum: int) -> None:
    """Signal the child's whole process group (its own session), so a wrapper's plugin gets it too."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)


def _ancestors(pid: int, depth: int = 8) -> list[int]:
    """The parent, grandparent, … of ``pid`` on this host (from /proc), nearest first."""
    found: list[int] = []
    for _ in range(depth):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rpartition(")")[2].split()[1])
        if pid <= 1:
            break
        found.append(pid)
    return found
