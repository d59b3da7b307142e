"""Telemetry: what an operator watches the agent by — Prometheus metrics and OpenTelemetry traces.

Why a package of its own: measuring the agent must not become part of what it does. The actors
(updater, registry, rate limiter, group committer, process manager…) each call a few small hooks
on the ``Telemetry`` they are given — ``metrics.plugin_call(…)``, ``tracing.span(…)`` — and know
nothing of Prometheus or OpenTelemetry. The composition root (``agent_process.py``) decides what
the hooks do: record into a ``CollectorRegistry`` it created and serves at ``GET /metrics``, and
export spans from a ``TracerProvider`` it created; or nothing at all (``Telemetry.off()``, the
default everywhere, so unit tests and a disabled agent pay one empty call per hook). There is no
global registry and no global tracer provider in the agent.

Modules are imported by name (this file imports none of them), so that the plugin SDK can use
``formae.telemetry.tracing`` without importing ``prometheus_client``:

- ``metrics``: ``AgentMetrics`` (the hooks, recording nothing) and ``PrometheusMetrics``;
- ``stats``: the summary for a person (``GET /api/v1/stats``, ``formae status agent``);
- ``loop_lag``: the event loop's lag, sampled;
- ``tracing``: ``Tracing`` (spans, W3C trace context for plugin calls) and the OTLP set-up;
- ``hooks``: ``Telemetry``, the two together, as the actors receive them.
"""
