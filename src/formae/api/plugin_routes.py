"""The routes about plugins' health: ``/health`` and ``/plugins``, from the PluginOverview.

They say what is wrong, not only what is there: a crash-looping plugin that never announced itself
shows with its restarts, last exit code, last stderr lines and next try, and makes ``/health``
answer ``degraded`` with the reasons.
"""

from __future__ import annotations

from fastapi import APIRouter

from formae import __version__
from formae.agent.plugin_overview import PluginOverview, PluginRow
from formae.agent.process_status import ProcessStatus
from formae.agent.registry import Location
from formae.api.schemas import Health, PluginView, ProcessView


def plugin_routes(overview: PluginOverview) -> APIRouter:
    router = APIRouter()

    @router.get("/health")
    async def health() -> Health:
        rows = [row for row in overview.rows() if row.registered is not None]
        reasons = overview.problems()
        return Health(
            status="degraded" if reasons else "ok",
            version=__version__,
            plugins=len(rows),
            healthy_plugins=sum(1 for row in rows if row.registered and row.registered.healthy),
            reasons=reasons,
        )

    @router.get("/plugins")
    async def plugins() -> list[PluginView]:
        return [plugin_view(row) for row in overview.rows()]

    return router


def plugin_view(row: PluginRow) -> PluginView:
    process = _process_view(row.process) if row.process else None
    p = row.registered
    if p is None:
        assert row.process is not None
        return _unannounced_view(row.process, process)
    return PluginView(
        namespace=p.namespace,
        name=p.name,
        version=p.version,
        node=p.node,
        pid=p.pid,
        location=p.location,
        healthy=p.healthy,
        status=p.status_reason or "ok",
        protocol_version=p.protocol_version,
        rate_limit=p.rate_limit if row.rate_limit is None else row.rate_limit,
        max_concurrency=p.max_concurrency,
        in_flight=p.link.in_flight,
        types=[s.type for s in p.schemas],
        registered_at=p.registered_at,
        clock_skew_seconds=None if p.clock_skew is None else round(p.clock_skew, 3),
        process=process,
    )


def _unannounced_view(status: ProcessStatus, process: ProcessView | None) -> PluginView:
    return PluginView(
        namespace="",
        name=status.name,
        version=status.version,
        node=status.node,
        pid=status.pid or 0,
        location=Location.LOCAL,
        healthy=False,
        status=status.problem() or f"{status.state}, not announced yet",
        protocol_version=0,
        rate_limit=0.0,
        max_concurrency=0,
        in_flight=0,
        types=[],
        registered_at=None,
        process=process,
    )


def _process_view(status: ProcessStatus) -> ProcessView:
    return ProcessView(
        state=status.state,
        pid=status.pid,
        crash_looping=status.crash_looping,
        restarts=status.restarts,
        last_exit_code=status.last_exit_code,
        last_exit_at=status.last_exit_at,
        next_try_at=status.next_try_at,
        stderr_tail=list(status.stderr),
    )
