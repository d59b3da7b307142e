"""The metrics summed up for a person: ``GET /api/v1/stats`` and ``formae status agent``.

Read from the same ``CollectorRegistry`` that ``/metrics`` serves, so the two never disagree:
counters are summed over the labels a person does not need, histograms become a count, a mean and
a 95th percentile (interpolated within its bucket, as PromQL's ``histogram_quantile`` does).
The model is an object with named sections, so more (a list of agents, issue 16) can join it.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.samples import Sample
from pydantic import BaseModel

__all__ = ["AgentStats", "summarize"]


class PluginCallStats(BaseModel):
    namespace: str
    operation: str
    calls: int
    failures: int
    """Answered with a failure, or not answered at all (``lost``)."""
    mean_seconds: float
    p95_seconds: float | None


class DatastoreStats(BaseModel):
    commits: int
    writes: int
    mean_commit_seconds: float
    p95_commit_seconds: float | None
    mean_writes_per_commit: float


class RunStats(BaseModel):
    """The sync or discovery run in progress, or the latest one."""

    kind: str
    running: bool
    planned: int | None
    counts: dict[str, int]


class LoopStats(BaseModel):
    last_lag_seconds: float
    mean_lag_seconds: float
    p95_lag_seconds: float | None


class AgentStats(BaseModel):
    version: str
    uptime_seconds: float
    commands: dict[str, dict[str, int]]
    """By kind, then state: how many commands entered that state since the agent started."""
    resource_updates: dict[str, dict[str, int]]
    """By operation, then final state."""
    plugin_calls: list[PluginCallStats]
    retries: dict[str, int]
    """By error code."""
    rate_limit_wait_seconds: dict[str, float]
    """By namespace: time calls spent waiting for a token."""
    plugins: dict[str, dict[str, int]]
    """By namespace, then health."""
    plugin_restarts: dict[str, int]
    heartbeats_missed: dict[str, int]
    datastore: DatastoreStats
    background_runs: dict[str, dict[str, int]]
    """By kind (sync, discovery), then the state runs ended in."""
    progress: list[RunStats]
    event_loop: LoopStats


def summarize(registry: CollectorRegistry, now: float | None = None) -> AgentStats:
    samples = _samples(registry)
    s = _Samples(samples)
    info = next((x.labels.get("version", "") for x in samples.get("formae_agent_info", [])), "")
    started = s.total("formae_agent_start_time_seconds")
    return AgentStats(
        version=info,
        uptime_seconds=max(0.0, (now if now is not None else time.time()) - started) if started else 0.0,
        commands=s.nested("formae_commands_total", "kind", "state"),
        resource_updates=s.nested("formae_resource_updates_total", "operation", "state"),
        plugin_calls=_calls(s),
        retries=s.by("formae_retries_total", "code"),
        rate_limit_wait_seconds=s.by_float("formae_rate_limit_wait_seconds_total", "namespace"),
        plugins=s.nested("formae_plugins", "namespace", "health"),
        plugin_restarts=s.by("formae_plugin_restarts_total", "plugin"),
        heartbeats_missed=s.by("formae_heartbeats_missed_total", "namespace"),
        datastore=_datastore(s),
        background_runs=s.nested("formae_background_runs_total", "kind", "state"),
        progress=_progress(s),
        event_loop=LoopStats(
            last_lag_seconds=s.total("formae_event_loop_lag_last_seconds"),
            mean_lag_seconds=s.mean("formae_event_loop_lag_seconds"),
            p95_lag_seconds=s.quantile("formae_event_loop_lag_seconds", 0.95),
        ),
    )


def _samples(registry: CollectorRegistry) -> dict[str, list[Sample]]:
    by_name: dict[str, list[Sample]] = defaultdict(list)
    for family in registry.collect():
        for sample in family.samples:
            by_name[sample.name].append(sample)
    return by_name


class _Samples:
    def __init__(self, samples: dict[str, list[Sample]]) -> None:
        self._samples = samples

    def of(self, name: str, **labels: str) -> Iterable[Sample]:
        for sample in self._samples.get(name, []):
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                yield sample

    def total(self, name: str, **labels: str) -> float:
        return sum(sample.value for sample in self.of(name, **labels))

    def by(self, name: str, label: str) -> dict[str, int]:
        return {k: round(v) for k, v in self.by_float(name, label).items()}

    def by_float(self, name: str, label: str) -> dict[str, float]:
        result: dict[str, float] = defaultdict(float)
        for sample in self.of(name):
            result[sample.labels[label]] += sample.value
        return dict(result)

    def nested(self, name: str, outer: str, inner: str) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = defaultdict(dict)
        for sample in self.of(name):
            row = result[sample.labels[outer]]
            row[sample.labels[inner]] = row.get(sample.labels[inner], 0) + round(sample.value)
        return dict(result)

    def mean(self, histogram: str, **labels: str) -> float:
        count = self.total(f"{histogram}_count", **labels)
        return self.total(f"{histogram}_sum", **labels) / count if count else 0.0

    def quantile(self, histogram: str, q: float, **labels: str) -> float | None:
        cumulative: dict[float, float] = defaultdict(float)
        for sample in self.of(f"{histogram}_bucket", **labels):
            cumulative[float(sample.labels["le"])] += sample.value
        return bucket_quantile(sorted(cumulative.items()), q)


def bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets; None without observations."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower  # beyond the last finite bound: its bound is all that is known
            share = (rank - below) / (count - below) if count > below else 1.0
            return lower + (upper - lower) * share
        lower, below = upper, count
    return lower


def _calls(s: _Samples) -> list[PluginCallStats]:
    keys = sorted(
        {
            (x.labels["namespace"], x.labels["operation"])
            for x in s.of("formae_plugin_call_duration_seconds_count")
        }
    )
    rows = []
    for namespace, operation in keys:
        labels = {"namespace": namespace, "operation": operation}
        count = s.total("formae_plugin_call_duration_seconds_count", **labels)
        failed = sum(
            s.total("formae_plugin_call_duration_seconds_count", **labels, result=result)
            for result in ("failure", "lost")
        )
        rows.append(
            PluginCallStats(
                namespace=namespace,
                operation=operation,
                calls=round(count),
                failures=round(failed),
                mean_seconds=s.mean("formae_plugin_call_duration_seconds", **labels),
                p95_seconds=s.quantile("formae_plugin_call_duration_seconds", 0.95, **labels),
            )
        )
    return rows


def _datastore(s: _Samples) -> DatastoreStats:
    commits = s.total("formae_datastore_commit_duration_seconds_count")
    writes = s.total("formae_datastore_commit_writes_sum")
    return DatastoreStats(
        commits=round(commits),
        writes=round(writes),
        mean_commit_seconds=s.mean("formae_datastore_commit_duration_seconds"),
        p95_commit_seconds=s.quantile("formae_datastore_commit_duration_seconds", 0.95),
        mean_writes_per_commit=writes / commits if commits else 0.0,
    )


def _progress(s: _Samples) -> list[RunStats]:
    kinds = sorted({x.labels["kind"] for x in s.of("formae_background_run_running")})
    return [
        RunStats(
            kind=kind,
            running=s.total("formae_background_run_running", kind=kind) > 0,
            planned=next(
                (round(x.value) for x in s.of("formae_background_run_planned_resources", kind=kind)), None
            ),
            counts={
                x.labels["outcome"]: round(x.value)
                for x in s.of("formae_background_run_resources", kind=kind)
            },
        )
        for kind in kinds
    ]
