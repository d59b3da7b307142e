"""The REST API: its routers (one module each: commands, inventory, joins, plugins, sync, auth, …) put
together with their error handlers and guards. Each router is a thin translation between HTTP and the
CommandRunner, the store or the registry."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from formae import __version__
from formae.agent.commands import CommandRunner, Rejected
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
from formae.api.command_routes import command_routes
from formae.api.config_routes import config_routes
from formae.api.inventory_routes import inventory_routes
from formae.api.join_routes import join_routes
from formae.api.masking import SecretMasking
from formae.api.metrics_routes import metrics_routes
from formae.api.paging import LargeReads
from formae.api.plugin_routes import plugin_routes
from formae.api.schemas import ErrorDetail, Problem
from formae.api.secrets_routes import secrets_routes
from formae.api.sync_routes import sync_router
from formae.store import Datastore, StoreError
from formae.telemetry.metrics import PrometheusMetrics


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
    large_reads = LargeReads()  # one for both: the biggest reads take turns
    commands = command_routes(services.runner, services.store, services.secrets, large_reads)
    app.include_router(commands, prefix="/api/v1")
    app.include_router(inventory_routes(services.store, large_reads), prefix="/api/v1")
    app.include_router(join_routes(services.joins), prefix="/api/v1")
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
