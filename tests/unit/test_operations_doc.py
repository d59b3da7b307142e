"""docs/operations.md lists every metric the agent registers, and nothing it does not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from formae.telemetry.metrics import PrometheusMetrics

pytestmark = pytest.mark.timeout(10)

DOC = Path(__file__).parents[2] / "docs" / "operations.md"


def test_the_metrics_table_lists_every_registered_metric() -> None:
    registry = CollectorRegistry()
    PrometheusMetrics(registry)
    registered = {
        family.name + ("_total" if family.type == "counter" else "") for family in registry.collect()
    }
    listed = set(re.findall(r"^\| `(formae_\w+)` \|", DOC.read_text(encoding="utf-8"), re.MULTILINE))

    assert registered == listed
