"""The REST routes: thin translations between HTTP and the CommandRunner, store and registry."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from formae import __version__
from formae.agent.commands import CommandRunner, Rejected, Submission
from formae.agent.discovery import Discovery
from formae.agent.joining import JoinService
from formae.agent.live_config import LiveConfig
from formae.agent.plugin_overview import PluginOverview
from formae.agent.registry import PluginRegistry
from formae.agent.secret_intake import SecretIntake
from formae.agent.synchronizer import Synchronizer
from formae.api import openapi
from formae.api.auth import ApiAccess, ApiGuard
from formae.api.auth_routes import auth_routes
from formae.api.cluster_routes import cluster_routes
from formae.api.config_routes import config_routes
from formae.api.masking import SecretMasking
from formae.api.metrics_routes import metrics_routes
from formae.api.paging import (
    DEFAULT_PAGE,
    MAX_PAGE,
    NEXT_HEADER,
    LargeReads,
    encode_cursor,
    in_slices,
    json_list,
    json_with_list,
)
from formae.api.plugin_routes import plugin_routes
from formae.api.schemas import (
    QUERY_TERMS,
    ApplyRequest,
    CommandView,
    DestroyRequest,
    ErrorDetail,
    KeyView,
    PlannedChange,
    Problem,
    ResourceView,
    StackView,
    SubmitResponse,
    TargetView,
    TokenRequest,
    TokenResponse,
    UpdateView,
)
from formae.api.secrets_routes import secrets_routes
from formae.api.sync_routes import sync_router
from formae.model import find_references
from formae.model.query import Query as ResourceQuery
from formae.model.query import QueryError
from formae.store import (
    Command,
    CommandState,
    Datastore,
    ResourceRecord,
    ResourceUpdateRecord,
    StoreError,
    UpdateState,
    VersionOrigin,
)
from formae.telemetry.metrics import PrometheusMetrics

_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorDetail, "description": "No such command"}
}
_NOT_SHOWN = frozenset({"deleted", "desired_properties", "origin"})


@dataclass(frozen=True)
class AgentServices:
    runner: CommandRunner
    store: Datastore
    registry: PluginRegistry
    joins: JoinService | None = None
    """None when the agent runs without TLS: there is nothing to join."""
    synchronizer: Synchronizer | None = None
    overview: PluginOverview | None = None
    """The registry and the local processes together; the registry alone when None."""
    discovery: Discovery | None = None
    secrets: SecretIntake | None = None
    """Seals the secrets of submitted formas; None: formas are taken as they come (tests only)."""
    live_config: LiveConfig | None = None
    """The running configuration and its reload; None: no ``/agent`` routes (tests only)."""
    metrics: PrometheusMetrics | None = None
    """Served at ``/metrics`` and ``/api/v1/stats``; None (metrics off): both are 404."""


def build_app(services: AgentServices, access: ApiAccess | None = None) -> FastAPI:
    """The API; ``access`` puts the token and Host checks in front of it (the agent always gives one)."""
    app = FastAPI(title="formae agent", version=__version__, openapi_url="/openapi.json")
    openapi.install(
        app,
        error_models={"Problem": Problem.model_json_schema(), "ErrorDetail": ErrorDetail.model_json_schema()},
    )
    app.include_router(_routes(services), prefix="/api/v1")
    if services.synchronizer is not None and services.discovery is not None:
        reality = sync_router(services.synchronizer, services.discovery, services.store, services.registry)
        app.include_router(reality, prefix="/api/v1")
    overview = services.overview or PluginOverview(services.registry)
    app.include_router(plugin_routes(overview), prefix="/api/v1")
    app.include_router(auth_routes(services.store), prefix="/api/v1")
    if services.live_config is not None:
        app.include_router(config_routes(services.live_config), prefix="/api/v1")
    if services.metrics is not None:
        app.include_router(metrics_routes(services.metrics))
    app.include_router(cluster_routes(services.store), prefix="/api/v1")
    if services.secrets is not None:
        app.include_router(secrets_routes(services.secrets.keyring), prefix="/api/v1")
        app.add_middleware(SecretMasking, redactor=services.secrets.redactor)
    if access is not None:
        app.add_middleware(ApiGuard, access=access)
    app.add_exception_handler(Rejected, _rejected)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StoreError, _store_failed)  # type: ignore[arg-type]
    return app


async def _rejected(_: Request, error: Rejected) -> JSONResponse:
    status = 409 if error.conflict else 503 if error.unavailable else 400
    return JSONResponse({"error": "command rejected", "problems": error.problems}, status_code=status)


async def _store_failed(_: Request, error: StoreError) -> JSONResponse:
    """The datastore failed (a full disk, PostgreSQL gone): the agent is up, the request was not kept."""
    return JSONResponse({"error": "datastore unavailable", "problems": [str(error)]}, status_code=503)


async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
    problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
    return JSONResponse({"error": "malformed request", "problems": problems}, status_code=400)


def _routes(services: AgentServices) -> APIRouter:
    router = APIRouter()
    runner, store = services.runner, services.store
    large_reads = LargeReads()

    @router.post("/plugins/tokens", status_code=201)
    async def create_join_token(body: TokenRequest) -> TokenResponse:
        """A one-time token for a plugin on another host; the response is the only copy of its secret."""
        if services.joins is None:
            raise HTTPException(
                409, "this agent runs without plugin TLS (--no-plugin-tls): plugins need no token"
            )
        try:
            token, record = await services.joins.create_token(
                body.namespaces, timedelta(seconds=body.ttl_seconds), body.agent_address
            )
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        return TokenResponse(
            token=token.encode(),
            id=record.id,
            namespaces=list(record.namespaces),
            expires_at=record.expires_at,
            agent_address=token.agent_address,
        )

    @router.post("/commands/apply", status_code=202)
    async def apply(body: ApplyRequest) -> SubmitResponse:
        forma = await services.secrets.seal(body.forma) if services.secrets else body.forma
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
        forma = await services.secrets.seal(body.forma) if services.secrets and body.forma else body.forma
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
            Query(description="Only updates changed at or after this time (a watcher's last updated_at)"),
        ] = None,
    ) -> Response:
        if wait:
            await runner.wait_finished(command_id, wait)
        async with large_reads.turn():
            try:
                since = updated_since.replace(tzinfo=updated_since.tzinfo or UTC) if updated_since else None
                return await _command_page(command_id, updates, limit, after, state, since)
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
    ) -> Response:
        found = await store.get_command(command_id, with_forma=False)
        if found is None:
            raise HTTPException(404, f"no command {command_id}")
        counts = await store.count_updates(command_id)
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

    @router.get("/resources", response_model=list[ResourceView])
    async def resources(
        query: Annotated[
            str, Query(pattern=QUERY_TERMS, description="e.g. 'stack:net type:FakeAWS::*'")
        ] = "",
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Resources per page")] = DEFAULT_PAGE,
        after: Annotated[
            str | None, Query(description=f"The {NEXT_HEADER} header of the previous page")
        ] = None,
    ) -> Response:
        try:
            selected = ResourceQuery.parse(query)
        except QueryError as error:
            raise HTTPException(400, str(error)) from None
        start = after
        async with large_reads.turn():
            found = await store.current_resources()
            page, next_key = await _resource_page(found, selected, start, limit)
            headers = {NEXT_HEADER: encode_cursor(next_key)} if next_key is not None else {}
            return await json_list(await in_slices(page, _resource_view), **headers)

    @router.get("/stacks")
    async def stacks() -> list[StackView]:
        return [
            StackView(
                label=s.label,
                description=s.description,
                policies=s.policies,
                expires_at=s.expires_at,
                reconciled_at=s.reconciled_at,
            )
            for s in await store.list_stacks()
        ]

    @router.get("/targets")
    async def targets() -> list[TargetView]:
        return [
            TargetView(label=t.label, namespace=t.namespace, config=t.config)
            for t in await store.list_targets()
        ]

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


async def _resource_page(
    found: list[ResourceRecord], selected: ResourceQuery, after: str | None, limit: int
) -> tuple[list[ResourceRecord], str | None]:
    """The ``limit`` resources matching ``selected`` after the key ``after``; the last key if more follow."""
    chosen = await in_slices(found, lambda r: selected.matches(r.key, r.target, r.managed))
    matching = sorted((r for r, ok in zip(found, chosen, strict=True) if ok), key=_resource_cursor)
    start = 0 if after is None else bisect.bisect_right([_resource_cursor(r) for r in matching], after)
    page = matching[start : start + limit]
    return page, (_resource_cursor(page[-1]) if start + limit < len(matching) else None)


def _resource_cursor(r: ResourceRecord) -> str:
    """Stack, type, label and target joined by tabs: sorts as the tuple does (labels hold no control
    characters), and any string is a valid ``after``, so no schema-valid cursor is ever refused."""
    return "\t".join((r.key.stack, r.key.type, r.key.label, r.target))


def _resource_view(r: ResourceRecord) -> ResourceView:
    return ResourceView(
        **{k: v for k, v in asdict(r).items() if k not in _NOT_SHOWN},
        drift="changed in the cloud" if r.origin is VersionOrigin.SYNC else None,
        refers_to=_refers_to(r),
    )


def _refers_to(r: ResourceRecord) -> list[KeyView]:
    keys = sorted({ref.target_key for _, ref in find_references(r.desired_properties)})
    return [KeyView(stack=s, type=t, label=label) for s, t, label in keys]


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
