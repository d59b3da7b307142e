"""The console's pages: overview, stacks, commands, one command, plugins; login and logout.

Server-rendered with Jinja2 (autoescaping on), so every page works without its script; the
script only follows a running command (``live.py``). Forms are the login and the logout, both
checking that ``Origin``, when the browser sends it, is this agent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jinja2
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from formae import __version__
from formae.agent.audit import AuditLog
from formae.agent.commands import CommandRunner
from formae.agent.plugin_overview import PluginOverview
from formae.console import charts, views
from formae.console.figures import FigureHistory
from formae.console.gate import PREFIX
from formae.console.session import COOKIE, SessionBook
from formae.graph import to_svg
from formae.store import Datastore, UpdateState
from formae.telemetry.stats import AgentStats

_MAX_FORM = 8192


@dataclass(frozen=True)
class ConsoleServices:
    store: Datastore
    runner: CommandRunner
    overview: PluginOverview
    sessions: SessionBook
    audit: AuditLog
    redact: Callable[[str], str] = str
    """The agent's redactor: known secret values in a message become ``(secret)``."""
    figures: FigureHistory | None = None
    """The agent's sampled live figures; None: the overview shows the stored trends only."""
    stats: Callable[[], AgentStats] | None = None
    """The agent's metrics summed up (what ``GET /api/v1/stats`` answers); None with metrics off."""


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("formae.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(prefix=PREFIX, version=__version__, svg=lambda v: Markup(to_svg(v)))
    env.filters["spark"] = lambda s: Markup(charts.sparkline(s))
    env.filters["dict_sum"] = lambda d: sum(d.values())
    return env


def page_routes(services: ConsoleServices, env: jinja2.Environment) -> APIRouter:
    router = APIRouter()
    store = services.store

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        principal = request.scope.get("state", {}).get("principal")
        return HTMLResponse(_render(env, services, name, principal=principal, **context))

    @router.get("/", response_class=HTMLResponse)
    async def overview(request: Request) -> HTMLResponse:
        commands = list(reversed(await store.list_commands(30, with_forma=False)))
        totals = [await store.count_updates(c.id) for c in commands]
        updates = [sum(t.values()) for t in totals]
        failed = [t.get(UpdateState.FAILED, 0) for t in totals]
        recent = await store.list_commands(1000, with_forma=False)
        series = [
            *charts.command_series(commands, updates, failed),
            charts.per_hour(recent, services.sessions.now()),
        ]
        stacks = await views.stack_pages(store)
        plugins = views.plugin_groups(services.overview)
        live = services.figures.series() if services.figures else []
        return page(
            request,
            "overview.html",
            live=live,
            stats=services.stats() if services.stats else None,
            series=series,
            stacks=stacks,
            plugins=plugins,
            states=views.state_counts(recent),
        )

    @router.get("/stacks", response_class=HTMLResponse)
    async def stacks(request: Request) -> HTMLResponse:
        return page(request, "stacks.html", stacks=await views.stack_pages(store))

    @router.get("/stacks/{label}", response_class=HTMLResponse)
    async def stack(request: Request, label: str) -> HTMLResponse:
        found = await views.stack_pages(store, only=label)
        if not found:
            raise HTTPException(404, f"no stack {label}")
        return page(request, "stack.html", stack=found[0], row_limit=views.ROW_LIMIT)

    @router.get("/commands", response_class=HTMLResponse)
    async def commands(request: Request) -> HTMLResponse:
        listed = await store.list_commands(50, with_forma=False)
        counts = {c.id: await store.count_updates(c.id) for c in listed}
        return page(request, "commands.html", commands=listed, counts=counts, duration=views.duration)

    @router.get("/commands/{command_id}", response_class=HTMLResponse)
    async def command(request: Request, command_id: str) -> HTMLResponse:
        shown = await views.command_page(store, services.runner, command_id, services.redact)
        if shown is None:
            raise HTTPException(404, f"no command {command_id}")
        return page(request, "command.html", shown=shown, final=shown.command.state.is_final)

    @router.get("/plugins", response_class=HTMLResponse)
    async def plugins(request: Request) -> HTMLResponse:
        return page(request, "plugins.html", groups=views.plugin_groups(services.overview))

    return router


def login_routes(services: ConsoleServices, env: jinja2.Environment) -> APIRouter:
    router = APIRouter()

    @router.get("/login", response_class=HTMLResponse)
    async def login_form(next: str = f"{PREFIX}/", failed: bool = False) -> HTMLResponse:
        body = _render(env, services, "login.html", next=_local(next), failed=failed, principal=None)
        return HTMLResponse(body, status_code=401 if failed else 200)

    @router.post("/login")
    async def login(request: Request) -> Response:
        _same_origin(request)
        form = await _form(request)
        peer = request.client.host if request.client else "unknown"
        session = await services.sessions.open(form.get("token", ""))
        target = _local(form.get("next", f"{PREFIX}/"))
        if session is None:
            services.audit.record("anonymous", "console login", peer, "unauthenticated")
            body = _render(env, services, "login.html", next=target, failed=True, principal=None)
            return HTMLResponse(body, status_code=401)
        services.audit.record(session.token_id, "console login", peer, "ok", role=str(session.principal.role))
        answer = RedirectResponse(target, status_code=303)
        answer.set_cookie(
            COOKIE,
            session.id,
            max_age=session.max_age(services.sessions.now()),
            path=PREFIX,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return answer

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        _same_origin(request)
        sid = request.cookies.get(COOKIE)
        if sid:
            services.sessions.close(sid)
        answer = RedirectResponse(f"{PREFIX}/login", status_code=303)
        answer.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return answer

    return router


def _render(env: jinja2.Environment, services: ConsoleServices, name: str, **context: Any) -> str:
    return env.get_template(name).render(now=services.sessions.now(), **context)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _MAX_FORM:
        raise HTTPException(413, "the form is too large")
    return {k: v[0] for k, v in parse_qs(body.decode(errors="replace"), max_num_fields=10).items()}


def _same_origin(request: Request) -> None:
    """A form posted from another site's page is refused (SameSite=Strict is the other half)."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser's cross-site post (browsers send Origin on every POST)
        return
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        raise HTTPException(403, "this form may be posted only from the console itself")


def _local(target: str) -> str:
    """Where to go after the login: a console path only, never another site."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(f"{PREFIX}/") or "\\" in target:
        return f"{PREFIX}/"
    return parts.path + (f"?{parts.query}" if parts.query else "")
