"""The web console at ``/ui``: stacks, commands (one followed live), plugins and the agent's figures.

Why a package of its own: it is a second face of the agent beside the REST API, for people in a
browser rather than scripts, with its own way to authenticate (a session cookie obtained with an
API token, ``session.py``) and its own output (HTML, SVG, server-sent events). It sits above the
API layer and uses the API's token verifier and views, the agent's runner and plugin overview,
the store, and the pure graph package; nothing below imports it (import-linter keeps it so).
Read-only: no page changes anything in the agent.

Served by the agent on the API's listener: ``mount_console`` adds it to the API's app. Nothing
is fetched from elsewhere: templates, one stylesheet and one small script ship in the package.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import Response

from formae.api.auth import TokenVerifier
from formae.console.gate import PREFIX, ConsoleGate
from formae.console.live import live_routes
from formae.console.pages import ConsoleServices, login_routes, page_routes, templates
from formae.console.session import SessionBook
from formae.graph import style_sheet

__all__ = ["PREFIX", "ConsoleServices", "SessionBook", "console_app", "mount_console"]

_STATIC = {"console.css": "text/css", "console.js": "text/javascript"}


def console_app(services: ConsoleServices, verifier: TokenVerifier) -> ConsoleGate:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    env = templates()
    app.include_router(login_routes(services, env))
    app.include_router(page_routes(services, env))
    app.include_router(live_routes(services))
    files = {
        name: resources.files("formae.console").joinpath("static", name).read_bytes() for name in _STATIC
    }
    files["marks.css"] = style_sheet().encode()

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in files:
            return Response(status_code=404)
        return Response(files[name], media_type=_STATIC.get(name, "text/css"))

    return ConsoleGate(app, services.sessions, verifier)


def mount_console(api: FastAPI, services: ConsoleServices, verifier: TokenVerifier) -> None:
    """Serve the console at ``/ui`` on the API's own app (the API's guard must leave ``/ui`` to it)."""
    api.mount(PREFIX, console_app(services, verifier))
