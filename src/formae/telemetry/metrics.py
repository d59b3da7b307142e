"""The agent's metrics: the hooks its actors call, and the Prometheus recording behind them.

``AgentMetrics`` is the seam: every hook is a method that records nothing, so an actor given no
metrics (unit tests, ``--no-metrics``) pays one empty call. ``PrometheusMetrics`` records into the
``CollectorRegistry`` it is handed by the composition root — never the default global one — and
keeps each label combination's child in a dict, so a hook on the hot path (a plugin call, 10,000 of
them in a large apply) costs a dict lookup and an increment, not a label resolution.

What is read rather than counted (plugins by health, the progress of the current sync and
discovery) comes from ``views`` at scrape time, so it is always the agent's present state.
Every metric is listed, with its type, labels and meaning, in ``docs/operations.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["AgentMetrics", "PluginHealth", "PrometheusMetrics", "RunProgress", "Views"]

CALL_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
COMMIT_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
COMMIT_WRITES = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
LAG_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class AgentMetrics:
    """The hooks. This base records nothing; ``PrometheusMetrics`` records."""

    def command_moved(self, kind: str, state: str) -> None:
        """A command of ``kind`` (apply, destroy) entered ``state`` (stored as such)."""

    def update_ended(self, operation: str, state: str) -> None:
        """A command's resource update ended: Success, Failed or Canceled."""

    def plugin_call(self, namespace: str, operation: str, result: str, seconds: float) -> None:
        """A call to a plugin returned: success, in_progress, failure, or lost (no answer)."""

    def retry(self, code: str) -> None:
        """An update backs off to try again after ``code`` (Throttling, PluginUnavailable…)."""

    def rate_limit_wait(self, namespace: str, seconds: float) -> None:
        """A call waited ``seconds`` (> 0) for its namespace's rate-limit token."""

    def plugin_restarted(self, plugin: str) -> None:
        """The process manager restarts a local plugin that exited."""

    def heartbeat_missed(self, namespace: str) -> None:
        """A plugin was marked unhealthy because its heartbeats stopped."""

    def store_committed(self, seconds: float, writes: int) -> None:
        """The group committer committed one transaction of ``writes`` writes in ``seconds``."""

    def background_run_ended(self, kind: str, state: str) -> None:
        """A sync or a discovery run ended (Success, Failed)."""

    def loop_lag(self, seconds: float) -> None:
        """The event loop woke ``seconds`` later than asked."""


@dataclass(frozen=True)
class PluginHealth:
    namespace: str
    node: str
    health: str
    """``healthy``, ``unhealthy`` or ``draining``."""


@dataclass(frozen=True)
class RunProgress:
    """The current (or, when none runs, the latest) sync or discovery run."""

    kind: str
    state: str
    counts: Mapping[str, int]
    total: int | None = None
    """How many resources the run reads in all, where that is known (sync)."""


@dataclass(frozen=True)
class Views:
    """What is read at scrape time rather than counted; empty by default."""

    plugins: Callable[[], Iterable[PluginHealth]] = lambda: ()
    runs: Callable[[], Iterable[RunProgress]] = lambda: ()


class PrometheusMetrics(AgentMetrics):
    def __init__(self, registry: CollectorRegistry, *, version: str = "", views: Views | None = None) -> None:
        self.registry = registry
        self._children: dict[tuple[Any, ...], Any] = {}
        self._counters(registry)
        self._histograms(registry)
        self._lag_last = Gauge(
            "formae_event_loop_lag_last_seconds", "The event loop's lag at the last sample", registry=registry
        )
        info = Gauge(
            "formae_agent_info", "1, labelled with the agent's version", ["version"], registry=registry
        )
        info.labels(version).set(1)
        started = Gauge(
            "formae_agent_start_time_seconds", "When the agent started (Unix time)", registry=registry
        )
        started.set(time.time())
        self._views = _ViewCollector(views or Views())
        registry.register(self._views)

    def watch(self, views: Views) -> None:
        """What to read at each scrape (plugins by health, run progress), once those objects exist."""
        self._views.views = views

    def _counters(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        self._commands = counter("formae_commands_total", "Commands that entered a state", ("kind", "state"))
        self._updates = counter(
            "formae_resource_updates_total", "Resource updates of commands that ended", ("operation", "state")
        )
        self._retries = counter("formae_retries_total", "Updates backing off to try again", ("code",))
        self._waited = counter(
            "formae_rate_limit_wait_seconds_total", "Time calls waited for rate-limit tokens", ("namespace",)
        )
        self._waits = counter(
            "formae_rate_limit_waits_total", "Calls that waited for a token", ("namespace",)
        )
        self._restarts = counter("formae_plugin_restarts_total", "Restarts of local plugins", ("plugin",))
        self._missed = counter(
            "formae_heartbeats_missed_total", "Plugins marked unhealthy for silence", ("namespace",)
        )
        self._runs = counter(
            "formae_background_runs_total", "Sync and discovery runs ended", ("kind", "state")
        )

    def _histograms(self, registry: CollectorRegistry) -> None:
        self._calls = Histogram(
            "formae_plugin_call_duration_seconds",
            "Calls to plugins, from sending to the answer",
            ("namespace", "operation", "result"),
            buckets=CALL_SECONDS,
            registry=registry,
        )
        self._commit_seconds = Histogram(
            "formae_datastore_commit_duration_seconds",
            "Datastore write transactions, from BEGIN to COMMIT",
            buckets=COMMIT_SECONDS,
            registry=registry,
        )
        self._commit_writes = Histogram(
            "formae_datastore_commit_writes",
            "Writes sharing one group-committed transaction",
            buckets=COMMIT_WRITES,
            registry=registry,
        )
        self._lag = Histogram(
            "formae_event_loop_lag_seconds",
            "How much later than asked the event loop woke",
            buckets=LAG_SECONDS,
            registry=registry,
        )

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # ------------------------------------------------------------ hooks

    def command_moved(self, kind: str, state: str) -> None:
        self._child(self._commands, kind, state).inc()

    def update_ended(self, operation: str, state: str) -> None:
        self._child(self._updates, operation, state).inc()

    def plugin_call(self, namespace: str, operation: str, result: str, seconds: float) -> None:
        self._child(self._calls, namespace, operation, result).observe(seconds)

    def retry(self, code: str) -> None:
        self._child(self._retries, code).inc()

    def rate_limit_wait(self, namespace: str, seconds: float) -> None:
        self._child(self._waited, namespace).inc(seconds)
        self._child(self._waits, namespace).inc()

    def plugin_restarted(self, plugin: str) -> None:
        self._child(self._restarts, plugin).inc()

    def heartbeat_missed(self, namespace: str) -> None:
        self._child(self._missed, namespace).inc()

    def store_committed(self, seconds: float, writes: int) -> None:
        self._commit_seconds.observe(seconds)
        self._commit_writes.observe(writes)

    def background_run_ended(self, kind: str, state: str) -> None:
        self._child(self._runs, kind, state).inc()

    def loop_lag(self, seconds: float) -> None:
        self._lag.observe(seconds)
        self._lag_last.set(seconds)


@dataclass(eq=False)  # the registry keeps collectors in a dict
class _ViewCollector(Collector):
    views: Views
    _plugin_health: tuple[str, ...] = field(default=("healthy", "unhealthy", "draining"))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield self._plugins()
        yield from self._progress()

    def _plugins(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "formae_plugins", "Registered plugins by health", labels=["namespace", "health"]
        )
        counts: dict[tuple[str, str], int] = {}
        for plugin in self.views.plugins():
            counts[plugin.namespace, plugin.health] = counts.get((plugin.namespace, plugin.health), 0) + 1
        for namespace in sorted({namespace for namespace, _ in counts}):
            for health in self._plugin_health:
                family.add_metric([namespace, health], counts.get((namespace, health), 0))
        return family

    def _progress(self) -> Iterator[GaugeMetricFamily]:
        done = GaugeMetricFamily(
            "formae_background_run_resources",
            "Resources the current (or latest) sync or discovery run has handled, by outcome",
            labels=["kind", "outcome"],
        )
        total = GaugeMetricFamily(
            "formae_background_run_planned_resources",
            "Resources the current (or latest) sync run reads in all",
            labels=["kind"],
        )
        running = GaugeMetricFamily(
            "formae_background_run_running", "1 while a sync or discovery run runs", labels=["kind"]
        )
        for run in self.views.runs():
            for outcome, count in run.counts.items():
                done.add_metric([run.kind, outcome], count)
            if run.total is not None:
                total.add_metric([run.kind], run.total)
            running.add_metric([run.kind], 1 if run.state == "Running" else 0)
        yield from (done, total, running)
