"""REST routes of commands: submit an apply or a destroy, cancel, read one (paged, long-polled) or the latest.

POST /api/v1/commands/apply | /destroy   → 202, the submission (its plan when simulated)
POST /api/v1/commands/{id}/cancel
GET  /api/v1/commands/{id}?wait=N&limit=&after=&state=&updated_since=&summary=
GET  /api/v1/commands?limit=&state=
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BeforeValidator

from formae.agent.commands import CommandRunner, Submission
from formae.agent.secret_intake import SecretIntake
from formae.api.paging import DEFAULT_PAGE, MAX_PAGE, LargeReads, in_slices, json_with_list
from formae.api.schemas import (
    ApplyRequest,
    CommandView,
    DestroyRequest,
    ErrorDetail,
    PlannedChange,
    SubmitResponse,
    UpdateView,
)
from formae.store import Command, CommandState, Datastore, ResourceUpdateRecord, StoreError, UpdateState

_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorDetail, "description": "No such command"}
}


def _iso_time(value: object) -> object:
    """Only an ISO 8601 time, as the schema says (``date-time``): pydantic alone would take ``0.5`` as
    half a second after 1970 (found by schemathesis, ST201)."""
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time, e.g. 2026-01-31T12:00:00Z") from None
    return value


def command_routes(
    runner: CommandRunner, store: Datastore, secrets: SecretIntake | None, large_reads: LargeReads
) -> APIRouter:
    """``secrets`` seals submitted formas (None: taken as they come, tests only); ``large_reads`` is
    shared with the inventory routes, so big reads take turns."""
    router = APIRouter()

    @router.post("/commands/apply", status_code=202)
    async def apply(body: ApplyRequest) -> SubmitResponse:
        forma = await secrets.seal(body.forma) if secrets else body.forma
        submission = await runner.submit_apply(
            forma,
            body.mode,
            simulate=body.simulate,
            force=body.force,
            source=body.source,
            queue=body.queue,
        )
        return _submitted(submission, body.simulate)

    @router.post("/commands/destroy", status_code=202)
    async def destroy(body: DestroyRequest) -> SubmitResponse:
        if (body.forma is None) == (body.query is None):
            raise HTTPException(400, "give exactly one of forma or query")
        forma = await secrets.seal(body.forma) if secrets and body.forma else body.forma
        submission = await runner.submit_destroy(
            forma, body.query, simulate=body.simulate, source=body.source, queue=body.queue
        )
        return _submitted(submission, body.simulate)

    @router.post("/commands/{command_id}/cancel")
    async def cancel(command_id: str) -> CommandView:
        try:
            command = await runner.cancel(command_id)
        except KeyError:
            raise HTTPException(404, f"no command {command_id}") from None
        return _command_view(command, [], await store.count_updates(command_id))

    @router.get("/commands/{command_id}", response_model=CommandView, responses=_NOT_FOUND)
    async def command(
        command_id: str,
        updates: bool = True,
        wait: Annotated[float, Query(ge=0, le=300, description="Seconds to wait for the command to end")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Updates per page")] = DEFAULT_PAGE,
        after: Annotated[str | None, Query(description="The next_after of the previous page")] = None,
        state: Annotated[list[UpdateState] | None, Query(description="Only updates in these states")] = None,
        updated_since: Annotated[
            datetime | None,
            BeforeValidator(_iso_time),
            Query(description="Only updates changed at or after this time (a watcher's last updated_at)"),
        ] = None,
        summary: Annotated[
            bool, Query(description="false: summary is {}, not counted (a reader of later pages has it)")
        ] = True,
    ) -> Response:
        if wait:
            await runner.wait_finished(command_id, wait)
        async with large_reads.turn():
            try:
                since = updated_since.replace(tzinfo=updated_since.tzinfo or UTC) if updated_since else None
                return await _command_page(command_id, updates, limit, after, state, since, summary)
            except StoreError:  # a command this agent runs is paused: say so from memory
                running = runner.running_command(command_id)
                if running is None or runner.waiting_message(command_id) is None:
                    raise
                return _json(_paused(runner, _command_view(running, [], counts={})))

    async def _command_page(
        command_id: str,
        updates: bool,
        limit: int,
        after: str | None,
        state: list[UpdateState] | None,
        since: datetime | None = None,
        counted: bool = True,
    ) -> Response:
        found = await store.get_command(command_id, with_forma=False)
        if found is None:
            raise HTTPException(404, f"no command {command_id}")
        counts = await store.count_updates(command_id) if counted or not updates else {}
        if not updates:  # the cheap view a poller wants: counts, no rows
            return _json(_paused(runner, _command_view(found, [], counts=counts)))
        page = await store.get_updates(command_id, after=after, limit=limit + 1, states=state, since=since)
        next_after = page[limit - 1].update_id if len(page) > limit else None
        head = _paused(runner, _command_view(found, [], counts=counts, next_after=next_after))
        return await json_with_list(head, "updates", await in_slices(page[:limit], _update_view))

    @router.get("/commands")
    async def commands(
        limit: Annotated[int, Query(ge=1, le=1000)] = 20, state: CommandState | None = None
    ) -> list[CommandView]:
        found = await store.list_commands(limit, [state] if state else None, with_forma=False)
        return [_command_view(c, [], {}) for c in found]

    return router


def _paused(runner: CommandRunner, view: CommandView) -> CommandView:
    """While the datastore fails, a command this agent runs says it waits for it, and since when."""
    waiting = runner.waiting_message(view.id)
    return view if waiting is None else view.model_copy(update={"message": waiting})


def _submitted(submission: Submission, simulate: bool) -> SubmitResponse:
    changes = [
        PlannedChange(
            id=u.id,
            operation=str(u.operation),
            stack=u.key.stack,
            type=u.key.type,
            label=u.key.label,
            replace=u.replace,
            depends_on=sorted(u.depends_on),
            patch=u.patch,
            adopt=u.adopt,
            native_id=u.native_id,
        )
        for u in submission.changeset.updates
    ]
    command_id = submission.command.id if submission.command else None
    return SubmitResponse(
        command_id=command_id,
        queued_behind=list(submission.queued_behind),
        simulate=simulate,
        summary=submission.changeset.summary(),
        changes=changes,
    )


def _json(model: CommandView) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


def _command_view(
    command: Command,
    updates: list[ResourceUpdateRecord],
    counts: Mapping[UpdateState, int],
    *,
    listed: bool = False,
    next_after: str | None = None,
) -> CommandView:
    """The command with its counts by state and, when ``listed``, a page of its updates."""
    return CommandView(
        id=command.id,
        kind=command.kind,
        mode=command.mode,
        state=command.state,
        message=command.message,
        created_at=command.created_at,
        updated_at=command.updated_at,
        summary={str(state): n for state, n in counts.items()},
        updates=[_update_view(u) for u in updates] if listed else None,
        next_after=next_after,
    )


def _update_view(u: ResourceUpdateRecord) -> UpdateView:
    return UpdateView(
        update_id=u.update_id,
        operation=u.operation,
        stack=u.stack,
        type=u.type,
        label=u.label,
        target=u.target,
        state=u.state,
        attempts=u.attempts,
        request_id=u.request_id,
        native_id=u.native_id,
        error_code=u.error_code,
        error=u.error,
        depends_on=u.depends_on,
        updated_at=u.updated_at,
    )
