"""REST routes that keep code and reality in sync: sync runs and the drift they found.

POST /api/v1/sync               {"query": "stack:net"}  → 202, the queued run
GET  /api/v1/sync/{id}?wait=N   the run (answers early when it ends)
GET  /api/v1/drift?query=Q      what changed in the cloud since the last command
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from formae.agent.drift import DriftEntry, cloud_drift
from formae.agent.synchronizer import Synchronizer, SyncRun
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


def sync_router(synchronizer: Synchronizer, store: Datastore) -> APIRouter:
    router = APIRouter()

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
        run = synchronizer.get(run_id)
        if run is None:
            raise HTTPException(404, f"no sync {run_id} (the agent keeps the last 20 runs)")
        if wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.finished.wait(), wait)
        return run_view(run)

    @router.get("/drift")
    async def drift(query: str = "") -> list[DriftView]:
        try:
            selected = ResourceQuery.parse(query)
        except QueryError as error:
            raise HTTPException(400, str(error)) from None
        return [drift_view(entry) for entry in await cloud_drift(store, selected)]

    return router


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
