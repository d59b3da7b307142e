"""One call to a plugin as telemetry sees it: the rate-limit wait, the call's span and its latency.

The updater and discovery both call plugins. This is the one place that turns a call into the
metrics and the span that describe it (``formae.telemetry``), so neither's logic carries them: the
wait for a token, then a ``plugin {operation}`` span whose W3C context travels with the call (the
plugin continues it), then the call's latency by namespace, operation and result.
"""

from __future__ import annotations

import time

from formae.agent.plugin_link import PluginLink, PluginUnavailable
from formae.agent.rate_limiter import RateLimiter
from formae.telemetry.hooks import Telemetry
from formae.wire.types import (
    OperationRequest,
    OperationResult,
    OperationStatus,
    ProgressResult,
    StatusRequest,
    operation_of,
)

LOST = "lost"
"""The result of a call that got no answer: the plugin went away or did not answer in time."""

_RESULTS = {
    OperationStatus.SUCCESS: "success",
    OperationStatus.IN_PROGRESS: "in_progress",
    OperationStatus.FAILURE: "failure",
}


async def call_plugin(
    link: PluginLink,
    request: OperationRequest,
    timeout: float,
    *,
    limiter: RateLimiter,
    telemetry: Telemetry,
) -> OperationResult:
    """Take the namespace's token, then call; PluginUnavailable as ``link.call`` raises it."""
    namespace = link.namespace
    waited = await limiter.acquire(namespace)
    metrics, tracing = telemetry.metrics, telemetry.tracing
    if waited > 0:
        metrics.rate_limit_wait(namespace, waited)
    operation = operation_label(request)
    attributes = {"formae.namespace": namespace, "formae.plugin.node": link.node} if tracing.enabled else None
    started = time.monotonic()
    with tracing.span(f"plugin {operation}", attributes):
        try:
            result = await link.call(request, timeout, tracing.traceparent())
        except PluginUnavailable:
            metrics.plugin_call(namespace, operation, LOST, time.monotonic() - started)
            raise
    metrics.plugin_call(namespace, operation, result_of(result), time.monotonic() - started)
    return result


def result_of(result: OperationResult) -> str:
    """``success``, ``in_progress`` or ``failure`` for a progress; ``success`` for a listing."""
    if isinstance(result, ProgressResult):
        return _RESULTS.get(result.status, "failure")
    return "success"


def operation_label(request: OperationRequest) -> str:
    """``create``, ``read``, ``update``, ``delete``, ``list``, or ``status`` for a poll."""
    return "status" if isinstance(request, StatusRequest) else operation_of(request).name.lower()
