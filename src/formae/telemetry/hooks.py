"""``Telemetry``: the metrics hooks and the tracer an actor is given, as one argument."""

from __future__ import annotations

from dataclasses import dataclass, field

from formae.telemetry.metrics import AgentMetrics
from formae.telemetry.tracing import Tracing


@dataclass(frozen=True)
class Telemetry:
    metrics: AgentMetrics = field(default_factory=AgentMetrics)
    tracing: Tracing = field(default_factory=Tracing)

    @classmethod
    def off(cls) -> Telemetry:
        """Hooks that record nothing and spans that are not made: the default of every actor."""
        return cls()
