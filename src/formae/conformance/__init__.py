"""The plugin conformance kit: what every formae plugin must do, checked against any executable.

A plugin in any language is started as the agent would start it, against an agent endpoint inside
this process (the agent's own hub, registry and CA on a loopback port), and taken through the
protocol: announcement, schemas, heartbeats, every operation, idempotent create, IN_PROGRESS then
Status, error codes, SIGTERM, the end of the stream and the death of its agent. Each check is one
line of a ``Report``; ``formae plugin conformance`` prints it and fails when any check fails.
"""

from formae.conformance.report import CheckResult, Outcome, Report, Scenario
from formae.conformance.suite import run_conformance

__all__ = ["CheckResult", "Outcome", "Report", "Scenario", "run_conformance"]
