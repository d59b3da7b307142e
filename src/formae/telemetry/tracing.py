"""Traces: one per command, with spans for planning, each resource operation, each plugin call and
each datastore commit — and the W3C trace context that carries a command's trace into its plugins.

``Tracing`` wraps a ``TracerProvider`` instance handed in by whoever composes the process (the
agent's ``agent_process.py``, the plugin SDK's ``run``), never the global one. Without a provider
(tracing off, the default) ``span`` returns one shared no-op context manager and ``traceparent``
returns nothing, so the hot path pays an attribute read; OpenTelemetry is not even imported then.

The wire between agent and plugin is one long-lived bidirectional gRPC stream, so per-call gRPC
metadata does not exist: each ``OperationCall`` carries ``traceparent`` and ``tracestate`` fields
(docs/protocol.md), filled from the plugin call's span by ``traceparent()`` and continued on the
plugin's side by ``Tracing.continued``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = ["TraceContext", "Tracing", "TracingSettings", "tracer_provider"]

_NOTHING: AbstractContextManager[None] = contextlib.nullcontext()
EXPORT_TIMEOUT = 5.0
"""Seconds one export may take, retries included: a collector that is down must not hold up a stop
(``formae agent stop`` kills an agent still running after 15 s; the agent kills a plugin after 3 s)."""


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A W3C trace context as it travels with a plugin call (``traceparent``, ``tracestate``)."""

    traceparent: str
    tracestate: str = ""


@dataclass(frozen=True)
class TracingSettings:
    """Where spans go: an OTLP/HTTP collector. The agent's come from its configuration."""

    service_name: str
    endpoint: str = ""
    """The OTLP/HTTP base URL (``/v1/traces`` is appended); empty: ``http://localhost:4318``."""
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    sample_ratio: float = 1.0
    attributes: Mapping[str, str] = field(default_factory=dict)
    """More resource attributes (``service.version``, ``formae.node``)."""

    @property
    def traces_url(self) -> str:
        return f"{(self.endpoint or 'http://localhost:4318').rstrip('/')}/v1/traces"


def tracer_provider(settings: TracingSettings) -> TracerProvider:
    """A provider exporting over OTLP/HTTP in batches; the caller shuts it down (flushing) at exit.

    Sampling follows the parent where there is one (a plugin does what the agent decided for the
    call's command) and otherwise keeps ``sample_ratio`` of traces.
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    resource = Resource.create({"service.name": settings.service_name, **settings.attributes})
    provider = TracerProvider(
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        resource=resource,
        shutdown_on_exit=False,
    )
    exporter = OTLPSpanExporter(
        endpoint=settings.traces_url,
        headers=dict(settings.headers) or None,
        timeout=EXPORT_TIMEOUT,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=_batch_delay_ms()))
    return provider


def _batch_delay_ms() -> float:
    """OpenTelemetry's ``OTEL_BSP_SCHEDULE_DELAY`` if set (tests shorten it), else one second."""
    raw = os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "").strip()
    return float(raw) if raw.replace(".", "", 1).isdigit() else 1000.0


class Tracing:
    """Spans from one ``TracerProvider``; every method is a no-op without one."""

    def __init__(self, provider: TracerProvider | None = None, *, scope: str = "formae") -> None:
        self.provider = provider
        self.enabled = provider is not None
        self._tracer: Tracer | None = provider.get_tracer(scope) if provider is not None else None
        self._handed_over: dict[str, Span] = {}
        """Command spans between submission and the runner: one trace from plan to end."""

    @classmethod
    def off(cls) -> Tracing:
        return cls()

    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
        """A span, current inside the ``with``; an exception escaping it is recorded on it."""
        if self._tracer is None:
            return _NOTHING
        return self._tracer.start_as_current_span(name, attributes=attributes)

    def child_span(
        self, name: str, attributes: Mapping[str, Any] | None = None
    ) -> AbstractContextManager[Any]:
        """A span only inside a trace already current: work that belongs to no command makes none."""
        if self._tracer is None:
            return _NOTHING
        from opentelemetry import trace

        if not trace.get_current_span().get_span_context().is_valid:
            return _NOTHING
        return self._tracer.start_as_current_span(name, attributes=attributes)

    def start(self, name: str, attributes: Mapping[str, Any] | None = None) -> Span | None:
        """A span that outlives the block that starts it (a command's): end it with ``end``."""
        if self._tracer is None:
            return None
        return self._tracer.start_span(name, attributes=attributes)

    @contextlib.contextmanager
    def inside(self, span: Span | None) -> Iterator[None]:
        """Make ``span`` current, without ending it at the end of the block."""
        if span is None:
            yield
            return
        from opentelemetry import trace

        with trace.use_span(span, end_on_exit=False, record_exception=False):
            yield

    def end(self, span: Span | None, error: str | None = None) -> None:
        if span is None:
            return
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, error))
        span.end()

    def hand_over(self, command_id: str, span: Span | None) -> None:
        """Keep a submitted command's span for the runner, which continues and ends it."""
        if span is not None:
            self._handed_over[command_id] = span

    def take_over(self, command_id: str) -> Span | None:
        return self._handed_over.pop(command_id, None)

    def traceparent(self) -> TraceContext | None:
        """The current span's context, to send with a plugin call; None when nothing is traced."""
        if self._tracer is None:
            return None
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        if "traceparent" not in carrier:
            return None
        return TraceContext(carrier["traceparent"], carrier.get("tracestate", ""))

    @contextlib.contextmanager
    def continued(
        self, context: TraceContext | None, name: str, attributes: Mapping[str, Any] | None = None
    ) -> Iterator[None]:
        """A span whose parent is the remote ``context`` (a plugin serving the agent's call)."""
        if self._tracer is None:
            yield
            return
        from opentelemetry import context as otel_context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent = None
        if context is not None and context.traceparent:
            carrier = {"traceparent": context.traceparent, "tracestate": context.tracestate}
            parent = TraceContextTextMapPropagator().extract(carrier)
        token = otel_context.attach(parent) if parent is not None else None
        try:
            with self._tracer.start_as_current_span(name, attributes=attributes):
                yield
        finally:
            if token is not None:
                otel_context.detach(token)

    def shutdown(self) -> None:
        """Export what is buffered and stop; safe without a provider and when called twice."""
        if self.provider is not None:
            self.provider.shutdown()
            self.provider = None
            self._tracer = None
            self.enabled = False
