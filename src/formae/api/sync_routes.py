"""REST routes that keep code and reality in sync: sync runs and the drift they found.

POST /api/v1/sync               {"query": "stack:net"}  → 202, the queued run
GET  /api/v1/sync/{id}?wait=N   the run (answers early when it ends)
GET  /api/v1/drift?query=Q      what changed in the cloud since the last command
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from formae.agent.discovery import Discovery, DiscoveryRun
from formae.agent.drift import DriftEntry, cloud_drift
from formae.agent.extract import extract
from formae.agent.registry import PluginRegistry
from formae.agent.run_queue import BackgroundRun
from formae.agent.synchronizer import Synchronizer, SyncRun
from formae.api.schemas import QUERY_TERMS
from formae.model.query import Query as ResourceQuery
from formae.model.query import QueryError
from formae.store import Datastore


class SyncRequest(BaseModel):
    query: str = Field(default="", description="Which resources to read, e.g. 'stack:net'; all when empty")


class SyncRunView(BaseModel):
    id: str
    query: str
    state: str
    created_at: datetime
    finished_at: datetime | None
    total: int
    counts: dict[str, int]
    errors: list[str]


class DriftView(BaseModel):
    stack: str
    type: str
    label: str
    target: str
    native_id: str | None
    change: str = Field(description="'deleted' in the cloud, or 'changed'")
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    patch: list[dict[str, Any]]
    detected_at: datetime
    detected_by: str | None


class DiscoverRequest(BaseModel):
    target: str | None = Field(default=None, description="Only this target; every known one when absent")
    type: str | None = Field(default=None, description="Only this resource type")


class DiscoveryRunView(BaseModel):
    id: str
    target: str | None
    type: str | None
    state: str
    created_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]
    errors: list[str]


def sync_router(
    synchronizer: Synchronizer, discovery: Discovery, store: Datastore, registry: PluginRegistry
) -> APIRouter:
    router = APIRouter()

    @router.post("/discover", status_code=202)
    async def start_discovery(body: DiscoverRequest) -> DiscoveryRunView:
        return discovery_view(discovery.start(body.target, body.type))

    @router.get("/discover/{run_id}")
    async def discovery_run(
        run_id: str,
        wait: Annotated[float, Query(ge=0, le=300, description="Seconds to wait for the run to end")] = 0,
    ) -> DiscoveryRunView:
        return discovery_view(await _ended_within(discovery.get(run_id), "discovery", run_id, wait))

    @router.get("/extract")
    async def extracted(
        query: Annotated[str, Query(pattern=QUERY_TERMS)] = "",
        stack: Annotated[str, Query(min_length=1)] = "adopted",
    ) -> dict[str, Any]:
        """A forma of the matching resources; unmanaged ones are put in ``stack``."""
        selected = _parsed(query)
        if not stack or stack.startswith("$"):
            raise HTTPException(400, f"stack {stack!r} cannot hold adopted resources; name another")
        inventory = await store.current_resources()
        chosen = [r for r in inventory if selected.matches(r.key, r.target, r.managed)]
        return extract(
            chosen,
            inventory,
            await store.list_stacks(),
            await store.list_targets(),
            registry.schema,
            stack_for_unmanaged=stack,
        )

    @router.post("/sync", status_code=202)
    async def start_sync(body: SyncRequest) -> SyncRunView:
        try:
            run = synchronizer.start(body.query)
        except QueryError as error:
            raise HTTPException(400, str(error)) from None
        return run_view(run)

    @router.get("/sync/{run_id}")
    async def sync_run(
        run_id: str,
        wait: Annotated[float, Query(ge=0, le=300, description="Seconds to wait for the run to end")] = 0,
    ) -> SyncRunView:
        run = await synchronizer.lookup(run_id)  # this agent's, or another's from the store
        if run is None or synchronizer.get(run_id) is run:
            return run_view(await _ended_within(run, "sync", run_id, wait))
        if wait:
            with contextlib.suppress(TimeoutError):
                run = await asyncio.wait_for(_stored_end(synchronizer, run), wait)
        return run_view(run)

    @router.get("/drift")
    async def drift(query: str = "") -> list[DriftView]:
        selected = _parsed(query)
        return [drift_view(entry) for entry in await cloud_drift(store, selected)]

    return router


R = TypeVar("R", bound=BackgroundRun)


async def _ended_within(run: R | None, kind: str, run_id: str, wait: float) -> R:
    """The run, once it ended or ``wait`` seconds passed (a long poll); 404 if it is not kept."""
    if run is None:
        raise HTTPException(404, f"no {kind} {run_id} (the agent keeps the last 20 runs)")
    if wait:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.finished.wait(), wait)
    return run


def _parsed(query: str) -> ResourceQuery:
    try:
        return ResourceQuery.parse(query)
    except QueryError as error:
        raise HTTPException(400, str(error)) from None


async def _stored_end(synchronizer: Synchronizer, run: SyncRun) -> SyncRun:
    """Another agent's run once the store shows it ended (read again every 0.25 s)."""
    while not run.finished.is_set():
        await asyncio.sleep(0.25)
        run = await synchronizer.lookup(run.id) or run
    return run


def run_view(run: SyncRun) -> SyncRunView:
    return SyncRunView(
        id=run.id,
        query=run.query,
        state=run.state,
        created_at=run.created_at,
        finished_at=run.finished_at,
        total=run.total,
        counts={str(outcome): n for outcome, n in run.counts.items()},
        errors=run.errors,
    )


def drift_view(entry: DriftEntry) -> DriftView:
    return DriftView(
        stack=entry.key.stack,
        type=entry.key.type,
        label=entry.key.label,
        target=entry.target,
        native_id=entry.native_id,
        change="deleted" if entry.deleted else "changed",
        before=entry.before,
        after=entry.after,
        patch=entry.patch,
        detected_at=entry.detected_at,
        detected_by=entry.detected_by,
    )


def discovery_view(run: DiscoveryRun) -> DiscoveryRunView:
    return DiscoveryRunView(
        id=run.id,
        target=run.target,
        type=run.type,
        state=run.state,
        created_at=run.created_at,
        finished_at=run.finished_at,
        counts=run.counts,
        errors=run.errors,
    )
