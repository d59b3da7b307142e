"""``GET /metrics`` (Prometheus text) and ``GET /api/v1/stats`` (the same, summed up for a person).

Both are read-only and, like every route but ``/api/v1/health``, need a bearer token: Prometheus is
given a read token (``formae api token create --role read``) through its scrape configuration's
``authorization: credentials_file`` (docs/operations.md). With metrics off neither route exists.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from formae.telemetry.metrics import PrometheusMetrics
from formae.telemetry.stats import AgentStats, summarize

_TEXT = {200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}}


def metrics_routes(metrics: PrometheusMetrics) -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", response_class=Response, responses=_TEXT)  # type: ignore[arg-type]
    async def scrape() -> Response:
        """Every metric of the agent in Prometheus's text format (docs/operations.md lists them)."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/api/v1/stats")
    async def stats() -> AgentStats:
        """The metrics summed up for a person: what ``formae status agent`` prints."""
        return summarize(metrics.registry)

    return router
