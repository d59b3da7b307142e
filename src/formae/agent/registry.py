"""PluginRegistry: every plugin the agent can route to, local or remote, filled only by announcements.

It is the single source of routing: the ResourceUpdater asks it for a namespace and gets a link to
a healthy plugin, or a clear error. Health comes from two signals: the connection (a closed stream
marks the plugin unhealthy at once) and heartbeats (silence longer than the timeout does too).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from formae.agent.node_claims import Claimant, Location, NodeClaimRefused, check_claim
from formae.agent.plugin_link import PluginLink, PluginUnavailable
from formae.agent.rate_limiter import RateLimiter
from formae.telemetry.metrics import AgentMetrics
from formae.wire.types import ResourceSchema

log = logging.getLogger("formae.agent.registry")

_STALL = 0.25
"""Seconds a heartbeat check may wake late before it counts as the agent's own stall."""


__all__ = ["Location", "NoPluginError", "NodeClaimRefused", "PluginRegistry", "RegisteredPlugin"]


class NoPluginError(LookupError):
    """No plugin of this namespace has ever announced itself: the user must install or start one."""

    def __init__(self, namespace: str, registered: list[str]) -> None:
        known = ", ".join(registered) if registered else "none"
        super().__init__(f"no plugin registered for namespace {namespace} (registered: {known})")
        self.namespace = namespace


@dataclass
class RegisteredPlugin:
    namespace: str
    name: str
    version: str
    node: str
    pid: int
    location: Location
    protocol_version: int
    rate_limit: float
    max_concurrency: int
    schemas: tuple[ResourceSchema, ...]
    link: PluginLink
    heartbeat_interval: float = 0.0
    """As announced; 0 when unknown, and then only the registry's timeout applies."""
    last_heartbeat: float = 0.0
    registered_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    healthy: bool = True
    status_reason: str = ""
    certificate: str | None = None
    """SHA-256 of its certificate's public key (``node_claims.fingerprint``); None without TLS."""
    draining: bool = False
    """Being replaced by a newer version: finishes the calls it has, is given no new ones."""
    clock_skew: float | None = None
    """Seconds the plugin's clock is ahead of the agent's (negative: behind), from its last heartbeat
    (one-way, so it includes the network's delay); None until a heartbeat says. Skew of minutes makes
    certificates look not yet valid or expired on one side."""

    @property
    def claimant(self) -> Claimant:
        return Claimant(self.namespace, self.location, self.certificate)


class PluginRegistry:
    def __init__(
        self,
        rate_limiter: RateLimiter,
        *,
        heartbeat_timeout: float = 2.5,
        forget_after: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        spawned_here: Callable[[str], bool] = lambda _node: False,
        metrics: AgentMetrics | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._metrics = metrics or AgentMetrics()
        self._sleep = sleep
        """How the heartbeat watch waits between its rounds (a test steps it round by round)."""
        self._spawned_here = spawned_here
        """Whether a node name is one the process manager gives a child it spawns (node_claims)."""
        self._rate_limiter = rate_limiter
        self._heartbeat_timeout = heartbeat_timeout
        self._forget_after = forget_after
        """How long an unhealthy plugin stays listed before it is forgotten: nodes that never come
        back (a replaced host, a container with a random name) must not pile up for the agent's life."""
        self._clock = clock
        self._wall_clock = wall_clock
        """Only to compare with the clocks plugins report; every duration uses ``clock``."""
        self._plugins: dict[str, RegisteredPlugin] = {}
        self._changed = asyncio.Event()

    # ------------------------------------------------------------ what the hub reports

    def check_claim(self, plugin: RegisteredPlugin) -> None:
        """Raise NodeClaimRefused if ``plugin`` may not take its node name (see node_claims)."""
        holder = self._plugins.get(plugin.node)
        check_claim(
            plugin.node,
            plugin.claimant,
            holder.claimant if holder else None,
            spawned_here=self._spawned_here(plugin.node),
        )

    def register(self, plugin: RegisteredPlugin) -> None:
        """Add or replace the plugin's entry; NodeClaimRefused, changing nothing, if the name is not its."""
        self.check_claim(plugin)
        previous = self._plugins.get(plugin.node)
        if previous is not None and previous.link is not plugin.link:
            previous.link.close("replaced by a new announcement from the same node")
        plugin.last_heartbeat = self._clock()
        self._plugins[plugin.node] = plugin
        if self._rate_limiter.announced(plugin.namespace) != plugin.rate_limit or previous is None:
            self._rate_limiter.configure(plugin.namespace, plugin.rate_limit)
        log.info(
            "Plugin registered namespace=%s node=%s version=%s location=%s pid=%d",
            plugin.namespace,
            plugin.node,
            plugin.version,
            plugin.location,
            plugin.pid,
        )
        self._notify()

    def heartbeat(self, link: PluginLink, wall_time: float = 0.0) -> None:
        """A sign of life; ``wall_time`` (the plugin's clock, 0 if unsaid) measures its clock skew."""
        plugin = self._plugins.get(link.node)
        if plugin is not None and plugin.link is link:
            plugin.last_heartbeat = self._clock()
            if wall_time > 0:
                plugin.clock_skew = wall_time - self._wall_clock()

    def disconnected(self, link: PluginLink, reason: str) -> None:
        plugin = self._plugins.get(link.node)
        if plugin is None or plugin.link is not link:
            return
        link.close(reason)
        if plugin.healthy:
            self._mark_unhealthy(plugin, f"disconnected: {reason}")

    # ------------------------------------------------------------ what the engine asks

    def lookup(self, namespace: str) -> PluginLink:
        """A healthy plugin for ``namespace``, the least busy when there are replicas."""
        candidates = [p for p in self._plugins.values() if p.namespace == namespace]
        if not candidates:
            raise NoPluginError(namespace, self.namespaces())
        healthy = [p for p in candidates if p.healthy and not p.draining]
        if not healthy:
            reasons = "; ".join(f"{p.node}: {p.status_reason}" for p in candidates)
            raise PluginUnavailable(f"no healthy plugin for namespace {namespace} ({reasons})")
        return min(healthy, key=lambda p: p.link.in_flight).link

    async def wait_for(self, namespace: str, timeout: float) -> PluginLink:
        """A healthy plugin for ``namespace``, waiting up to ``timeout`` for one to announce or come back."""
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                try:
                    return self.lookup(namespace)
                except (NoPluginError, PluginUnavailable):
                    await changed.wait()

    def drain(self, node: str) -> PluginLink | None:
        """Route nothing new to ``node`` (a version being replaced); its link, to wait for its calls."""
        plugin = self._plugins.get(node)
        if plugin is None:
            return None
        plugin.draining = True
        log.info(
            "Plugin draining namespace=%s node=%s in_flight=%d", plugin.namespace, node, plugin.link.in_flight
        )
        self._notify()
        return plugin.link

    def forget(self, node: str) -> None:
        """Drop ``node`` at once: the agent stopped it on purpose, so it is not listed as unhealthy."""
        plugin = self._plugins.pop(node, None)
        if plugin is not None:
            plugin.link.close("retired")
            log.info("Plugin retired namespace=%s node=%s version=%s", plugin.namespace, node, plugin.version)
            self._notify()

    async def wait_registered(self, node: str, timeout: float) -> bool:
        """Whether ``node`` registers (healthy) within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    changed = self._changed
                    plugin = self._plugins.get(node)
                    if plugin is not None and plugin.healthy:
                        return True
                    await changed.wait()
        except TimeoutError:
            return False

    def namespaces(self) -> list[str]:
        return sorted({p.namespace for p in self._plugins.values()})

    def rate_limit(self, namespace: str) -> float:
        """The namespace's rate in force: the announced one, or the configuration's override."""
        return self._rate_limiter.rate(namespace)

    def plugins(self) -> list[RegisteredPlugin]:
        return sorted(self._plugins.values(), key=lambda p: (p.namespace, p.node))

    def schema(self, resource_type: str) -> ResourceSchema | None:
        """The type's schema as the healthy plugins announce it (a stale entry's only as a last resort)."""
        for plugin in sorted(self._plugins.values(), key=lambda p: not p.healthy):
            for schema in plugin.schemas:
                if schema.type == resource_type:
                    return schema
        return None

    # ------------------------------------------------------------ liveness

    async def watch_heartbeats(self) -> None:
        """Mark plugins that went silent unhealthy, and forget them later; runs for the agent's life.

        A round that wakes late, because the agent's own event loop was blocked (a 100,000-resource
        submission on a loaded machine), judges nobody: the heartbeats that arrived meanwhile are
        still unread, so the plugins would be blamed for the agent's stall. The next round judges.
        """
        interval = min(0.05, self._heartbeat_timeout / 10)
        previous = self._clock()
        while True:
            await self._sleep(interval)
            now = self._clock()
            stalled, previous = now - previous > interval + _STALL, now
            if not stalled:
                self.check_heartbeats()

    def check_heartbeats(self) -> None:
        """One look at every plugin's silence, by ``clock``: what ``watch_heartbeats`` does at each tick."""
        now = self._clock()
        for plugin in list(self._plugins.values()):
            silent_for = now - plugin.last_heartbeat
            if plugin.healthy and silent_for >= self._patience(plugin):
                reason = f"no heartbeat for {silent_for:.1f}s"
                self._metrics.heartbeat_missed(plugin.namespace)
                plugin.link.close(reason)
                self._mark_unhealthy(plugin, reason)
            elif not plugin.healthy and silent_for >= self._forget_after:
                del self._plugins[plugin.node]
                log.info(
                    "Plugin forgotten namespace=%s node=%s silent_for=%.0fs",
                    plugin.namespace,
                    plugin.node,
                    silent_for,
                )

    def _patience(self, plugin: RegisteredPlugin) -> float:
        """How long a plugin may stay silent: the timeout, or three of its own announced intervals."""
        return max(self._heartbeat_timeout, 3 * plugin.heartbeat_interval)

    def _mark_unhealthy(self, plugin: RegisteredPlugin, reason: str) -> None:
        plugin.healthy = False
        plugin.status_reason = reason
        log.warning("Plugin unhealthy namespace=%s node=%s reason=%s", plugin.namespace, plugin.node, reason)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
