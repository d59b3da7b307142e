"""Each metric's hook, the actors that call them, the stats summary and the spans of a plugin call.

No process and no real sleep: the plugin is fake-aws in memory behind a real PluginHub, clocks
are injected, spans go to OpenTelemetry's in-memory exporter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from formae_fake_aws import FakeAWSPlugin
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from formae.agent.plugin_link import PluginLink
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import PluginRegistry
from formae.agent.updater import ResourceUpdater
from formae.plugin import CreateRequest, TargetInfo
from formae.plugin._runtime import _Session
from formae.plugin.settings import PluginSettings
from formae.store.group_commit import GroupCommitter
from formae.store.records import UpdateState
from formae.telemetry.hooks import Telemetry
from formae.telemetry.loop_lag import LoopLag
from formae.telemetry.metrics import AgentMetrics, PluginHealth, PrometheusMetrics, RunProgress, Views
from formae.telemetry.stats import bucket_quantile, summarize
from formae.telemetry.tracing import Tracing
from formae.wire.codec import decode_agent_frame, encode_agent_frame
from formae.wire.frames import OperationCall, OperationReply
from tests.unit.fakes import FakeClock
from tests.unit.memory_stream import MemoryStreamPair, connected
from tests.unit.test_updater import POLICY, TARGET, RecordingSink, a_record

pytestmark = pytest.mark.timeout(10)


class Recorded(AgentMetrics):
    """Every hook call, by name and arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_") or name == "calls" or not hasattr(AgentMetrics, name):
            return super().__getattribute__(name)
        return lambda *args: self.calls.append((name, args))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for called, args in self.calls if called == name]


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


# ------------------------------------------------------------ each hook, recorded


HOOKS: list[tuple[Callable[[AgentMetrics], None], str, dict[str, str], float]] = [
    (
        lambda m: m.command_moved("apply", "Success"),
        "formae_commands_total",
        {"kind": "apply", "state": "Success"},
        1,
    ),
    (
        lambda m: m.update_ended("create", "Failed"),
        "formae_resource_updates_total",
        {"operation": "create", "state": "Failed"},
        1,
    ),
    (
        lambda m: m.plugin_call("FakeAWS", "create", "success", 0.02),
        "formae_plugin_call_duration_seconds_count",
        {"namespace": "FakeAWS", "operation": "create", "result": "success"},
        1,
    ),
    (
        lambda m: m.plugin_call("FakeAWS", "create", "success", 0.02),
        "formae_plugin_call_duration_seconds_bucket",
        {"namespace": "FakeAWS", "operation": "create", "result": "success", "le": "0.025"},
        1,
    ),
    (lambda m: m.retry("Throttling"), "formae_retries_total", {"code": "Throttling"}, 1),
    (
        lambda m: m.rate_limit_wait("FakeAWS", 0.5),
        "formae_rate_limit_wait_seconds_total",
        {"namespace": "FakeAWS"},
        0.5,
    ),
    (
        lambda m: m.rate_limit_wait("FakeAWS", 0.5),
        "formae_rate_limit_waits_total",
        {"namespace": "FakeAWS"},
        1,
    ),
    (lambda m: m.plugin_restarted("fake-aws"), "formae_plugin_restarts_total", {"plugin": "fake-aws"}, 1),
    (lambda m: m.heartbeat_missed("FakeAWS"), "formae_heartbeats_missed_total", {"namespace": "FakeAWS"}, 1),
    (lambda m: m.store_committed(0.003, 7), "formae_datastore_commit_duration_seconds_count", {}, 1),
    (lambda m: m.store_committed(0.003, 7), "formae_datastore_commit_writes_sum", {}, 7),
    (
        lambda m: m.background_run_ended("sync", "Success"),
        "formae_background_runs_total",
        {"kind": "sync", "state": "Success"},
        1,
    ),
    (lambda m: m.loop_lag(0.2), "formae_event_loop_lag_seconds_sum", {}, 0.2),
    (lambda m: m.loop_lag(0.2), "formae_event_loop_lag_last_seconds", {}, 0.2),
]


@pytest.mark.parametrize(("hook", "name", "labels", "expected"), HOOKS, ids=[h[1] for h in HOOKS])
def test_each_hook_records_its_metric(
    hook: Callable[[AgentMetrics], None], name: str, labels: dict[str, str], expected: float
) -> None:
    registry = CollectorRegistry()
    hook(PrometheusMetrics(registry, version="1.2.3"))

    assert value(registry, name, **labels) == pytest.approx(expected)
    assert value(registry, "formae_agent_info", version="1.2.3") == 1


def test_the_base_hooks_record_nothing_and_need_no_registry() -> None:
    for hook, *_ in HOOKS:
        hook(AgentMetrics())


def test_views_are_read_at_each_scrape() -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    plugins = [PluginHealth("FakeAWS", "a", "healthy"), PluginHealth("FakeAWS", "b", "unhealthy")]
    runs = [RunProgress("sync", "Running", {"unchanged": 4, "changed": 1}, total=9)]
    metrics.watch(Views(lambda: plugins, lambda: runs))

    assert value(registry, "formae_plugins", namespace="FakeAWS", health="healthy") == 1
    assert value(registry, "formae_plugins", namespace="FakeAWS", health="draining") == 0
    assert value(registry, "formae_background_run_resources", kind="sync", outcome="unchanged") == 4
    assert value(registry, "formae_background_run_planned_resources", kind="sync") == 9
    assert value(registry, "formae_background_run_running", kind="sync") == 1
    plugins.pop()
    assert value(registry, "formae_plugins", namespace="FakeAWS", health="unhealthy") == 0


# ------------------------------------------------------------ the actors call them


async def run_updater(
    plugin: FakeAWSPlugin, properties: dict[str, Any], limiter: RateLimiter, *, rate: float = 0
) -> Recorded:
    metrics = Recorded()
    registry = PluginRegistry(limiter)
    async with connected(plugin, registry):
        if rate:  # after the announcement, which sized the bucket as the plugin said
            limiter.configure("FakeAWS", rate, burst=1)
            limiter.reserve("FakeAWS")  # the one token is gone: the next call waits
        updater = ResourceUpdater(
            registry, limiter, RecordingSink(), POLICY, TARGET, properties, telemetry=Telemetry(metrics)
        )
        final = await updater.run(a_record())
    assert final.state is UpdateState.SUCCESS
    return metrics


async def test_the_updater_reports_each_plugin_call_and_each_retry() -> None:
    properties = {"BucketName": "b", "FakeFailWith": "Throttling", "FakeInProgressPolls": 1}
    metrics = await run_updater(FakeAWSPlugin(), properties, RateLimiter())

    calls = [(ns, op, result) for ns, op, result, _ in metrics.named("plugin_call")]
    assert calls == [
        ("FakeAWS", "create", "failure"),
        ("FakeAWS", "create", "in_progress"),
        ("FakeAWS", "status", "success"),
    ]
    assert all(seconds >= 0 for *_, seconds in metrics.named("plugin_call"))
    assert metrics.named("retry") == [("Throttling",)]
    assert metrics.named("rate_limit_wait") == []  # no limit announced: nobody waited


async def test_a_call_that_waits_for_its_token_reports_the_wait() -> None:
    limiter = RateLimiter(clock=FakeClock())  # no time passes: no token comes back by itself

    metrics = await run_updater(FakeAWSPlugin(), {"BucketName": "b"}, limiter, rate=1e6)

    [(namespace, seconds)] = metrics.named("rate_limit_wait")
    assert namespace == "FakeAWS"
    assert seconds == pytest.approx(1e-6)


async def test_a_silent_plugin_is_a_missed_heartbeat() -> None:
    clock, metrics, pair = FakeClock(), Recorded(), MemoryStreamPair(peer="memory:quiet")
    registry = PluginRegistry(RateLimiter(), heartbeat_timeout=0.06, clock=clock, metrics=metrics)
    from tests.unit.test_registry import plugin

    link = PluginLink(pair.agent, "FakeAWS", "quiet@h")
    registry.register(plugin(link))
    try:
        clock.advance(1.0)  # silent for a second of fake time: the watcher's next look closes it
        registry.check_heartbeats()
        assert link.is_closed
    finally:
        pair.close()
    assert metrics.named("heartbeat_missed") == [("FakeAWS",)]


async def test_the_loop_lag_is_the_overshoot_of_a_sleep() -> None:
    clock, metrics = FakeClock(), Recorded()

    async def late_sleep(seconds: float) -> None:
        clock.advance(seconds + 0.25)

    lag = await LoopLag(metrics, 0.5, clock=clock, sleep=late_sleep).sample()

    assert lag == pytest.approx(0.25)
    assert metrics.named("loop_lag") == [(pytest.approx(0.25),)]


async def test_the_group_committer_reports_each_transaction_and_its_size() -> None:
    metrics = Recorded()

    async def transact(body: Any) -> None:
        await body(_NoTx())

    committer = GroupCommitter(transact, name="memory")
    committer.telemetry = Telemetry(metrics)
    committer.start()

    async def write(tx: Any) -> int:
        return 1

    try:
        assert await asyncio.gather(*(committer.submit(write) for _ in range(5))) == [1] * 5
    finally:
        await committer.close()
    sizes = [writes for _, writes in metrics.named("store_committed")]
    assert sum(sizes) == 5
    assert len(sizes) == committer.transactions


class _NoTx:
    async def execute(self, sql: str, *args: Any) -> None: ...

    async def executemany(self, sql: str, rows: Any) -> None: ...

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return []

    async def execute_script(self, script: str) -> None: ...


# ------------------------------------------------------------ the summary


def test_bucket_quantiles_interpolate_within_the_bucket() -> None:
    buckets = [(0.1, 0.0), (0.2, 50.0), (0.4, 100.0), (float("inf"), 100.0)]

    assert bucket_quantile(buckets, 0.5) == pytest.approx(0.2)
    assert bucket_quantile(buckets, 0.75) == pytest.approx(0.3)
    assert bucket_quantile([(0.1, 0.0), (float("inf"), 0.0)], 0.95) is None
    assert bucket_quantile([(0.1, 0.0), (float("inf"), 3.0)], 0.95) == 0.1


def test_the_summary_sums_what_a_person_needs() -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry, version="9.9")
    for result, seconds in (("success", 0.01), ("success", 0.03), ("failure", 0.02), ("lost", 1.0)):
        metrics.plugin_call("FakeAWS", "create", result, seconds)
    metrics.command_moved("apply", "Success")
    metrics.store_committed(0.002, 10)
    metrics.store_committed(0.004, 30)

    stats = summarize(registry)

    [calls] = stats.plugin_calls
    assert (calls.namespace, calls.operation, calls.calls, calls.failures) == ("FakeAWS", "create", 4, 2)
    assert calls.mean_seconds == pytest.approx(0.265)
    assert stats.commands == {"apply": {"Success": 1}}
    assert (stats.datastore.commits, stats.datastore.writes, stats.datastore.mean_writes_per_commit) == (
        2,
        40,
        20,
    )
    assert stats.version == "9.9"


# ------------------------------------------------------------ traces across the call


def traced() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider), exporter


def test_without_a_provider_nothing_is_made_or_sent() -> None:
    tracing = Tracing.off()

    with tracing.span("x"), tracing.child_span("y"):
        assert tracing.traceparent() is None
    assert tracing.start("z") is None


def test_the_trace_context_crosses_the_wire_codec() -> None:
    call = OperationCall(7, CreateRequest("FakeAWS::S3::Bucket", "b", {}, TargetInfo("t", "FakeAWS")), 5.0)
    call = call._replace(traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01", tracestate="k=v")

    assert decode_agent_frame(encode_agent_frame(call)) == call


async def test_a_plugin_call_span_is_the_parent_of_the_plugins_span() -> None:
    """The agent's span goes out with the call; the SDK's span for serving it is its child."""
    agent_tracing, agent_spans = traced()
    plugin_tracing, plugin_spans = traced()
    pair, stop = MemoryStreamPair(peer="memory:fake"), asyncio.Event()
    settings = PluginSettings("127.0.0.1:1", "fake@test", "cookie", heartbeat_interval=5.0)
    session = asyncio.create_task(
        _Session(FakeAWSPlugin(), pair.plugin, settings, tracing=plugin_tracing).run(stop)
    )
    link = PluginLink(pair.agent, "FakeAWS", "fake@test")
    replies = asyncio.create_task(deliver(pair, link))
    request = CreateRequest("FakeAWS::S3::Bucket", "b", {"BucketName": "b"}, TargetInfo("t", "FakeAWS"))
    try:
        with agent_tracing.span("plugin create"):
            await link.call(request, 5.0, agent_tracing.traceparent())
    finally:
        stop.set()
        pair.close()
        await asyncio.gather(session, replies, return_exceptions=True)

    [sent] = agent_spans.get_finished_spans()
    [served] = plugin_spans.get_finished_spans()
    assert served.name == "plugin serves create FakeAWS::S3::Bucket"
    assert served.context.trace_id == sent.context.trace_id
    assert served.parent is not None
    assert served.parent.span_id == sent.context.span_id


async def deliver(pair: MemoryStreamPair, link: PluginLink) -> None:
    while (frame := await pair.agent.receive()) is not None:
        if isinstance(frame, OperationReply):
            link.deliver(frame)


def test_a_commit_span_is_made_only_inside_a_trace() -> None:
    tracing, spans = traced()

    with tracing.child_span("datastore commit"):
        pass
    assert spans.get_finished_spans() == ()
    with tracing.span("apply"), tracing.child_span("datastore commit"):
        pass
    assert [s.name for s in spans.get_finished_spans()] == ["datastore commit", "apply"]
