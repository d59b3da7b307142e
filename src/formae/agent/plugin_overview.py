"""PluginOverview: the registry's entries and the local processes in one picture, for people and submission.

The registry knows the plugins that announced themselves; the PluginProcessManager knows the local
ones it runs, including those that crash before they can announce anything. Neither alone can
answer "why is there no plugin for FakeAWS?", and that answer is needed in three places: ``formae
plugin list``, ``/health`` (degraded, with reasons) and the submission of a command, which must fail
at once and say why rather than be accepted and fail minutes later with NoPlugin.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from formae.agent.plugin_link import PluginUnavailable
from formae.agent.process_status import ProcessStatus
from formae.agent.registry import NoPluginError, PluginRegistry, RegisteredPlugin

SUBMIT_GRACE = 5.0
"""How long a submission waits for a namespace whose plugin is briefly away (restarting, reconnecting)."""


class LocalProcesses(Protocol):
    def statuses(self) -> list[ProcessStatus]: ...


@dataclass(frozen=True)
class PluginRow:
    """One plugin as people see it: its registration, its local process, or both."""

    registered: RegisteredPlugin | None
    process: ProcessStatus | None
    rate_limit: float | None = None
    """Operations per second in force for its namespace (the configuration may override the announced)."""


@dataclass(frozen=True)
class Unavailable:
    """Namespaces a command cannot run on now, and why."""

    missing: list[str]
    """Problems of namespaces no plugin ever announced (a forma or install mistake)."""
    down: list[str]
    """Problems of namespaces whose plugins are all unhealthy, crash-looping or refused."""

    def __bool__(self) -> bool:
        return bool(self.missing or self.down)


class PluginOverview:
    def __init__(
        self,
        registry: PluginRegistry,
        processes: LocalProcesses | None = None,
        *,
        grace: float = SUBMIT_GRACE,
    ) -> None:
        self._registry = registry
        self._processes = processes
        self._grace = grace

    def rows(self) -> list[PluginRow]:
        statuses = {s.node: s for s in self._statuses()}
        rows = [
            PluginRow(p, statuses.pop(p.node, None), self._registry.rate_limit(p.namespace))
            for p in self._registry.plugins()
        ]
        return rows + [PluginRow(None, s) for s in statuses.values()]

    def problems(self) -> list[str]:
        """Why the agent is degraded: every plugin that is crash-looping, refused or unhealthy."""
        found: list[str] = []
        for row in self.rows():
            process_problem = row.process.problem() if row.process else None
            if process_problem:
                found.append(process_problem)
            elif row.registered is not None and not row.registered.healthy:
                p = row.registered
                found.append(f"plugin {p.node} ({p.namespace}) is unhealthy: {p.status_reason}")
        return found

    async def unavailable(self, namespaces: Iterable[str]) -> Unavailable:
        """Which namespaces have no healthy plugin, after a short wait for those that may come back."""
        missing: list[str] = []
        down: list[str] = []
        deadline = time.monotonic() + self._grace
        for namespace in sorted(set(namespaces)):
            try:
                self._registry.lookup(namespace)
            except NoPluginError as error:
                missing.append(f"{error}{self._not_running()}")
            except PluginUnavailable:
                if not await self._comes_back(namespace, deadline):
                    down.append(self._why_down(namespace))
        return Unavailable(missing, down)

    async def _comes_back(self, namespace: str, deadline: float) -> bool:
        if any(s.problem() for s in self._processes_of(namespace)):
            return False  # crash-looping or refused: waiting a few seconds will not change that
        try:
            await self._registry.wait_for(namespace, max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return False
        return True

    def _why_down(self, namespace: str) -> str:
        reasons = []
        for row in self.rows():
            if row.registered is None or row.registered.namespace != namespace:
                continue
            problem = row.process.problem() if row.process else None
            reasons.append(problem or f"{row.registered.node}: {row.registered.status_reason}")
        return f"no healthy plugin for namespace {namespace}: {'; '.join(reasons)} (see formae plugin list)"

    def _not_running(self) -> str:
        problems = [s.problem() for s in self._statuses() if s.problem()]
        return f"; local plugins not running: {'; '.join(str(p) for p in problems)}" if problems else ""

    def _processes_of(self, namespace: str) -> list[ProcessStatus]:
        rows = self.rows()
        return [r.process for r in rows if r.process and r.registered and r.registered.namespace == namespace]

    def _statuses(self) -> list[ProcessStatus]:
        return self._processes.statuses() if self._processes else []
