"""The console's gate: a session cookie or a bearer token on every page, and strict headers.

The API's guard checks the Host header for the console too, then leaves the rest here (its
``self_guarded`` prefixes). Login, logout and the static files are open; every other path needs
a session (``session.py``) or the same bearer token the API takes, of any role: the console only
reads. A browser without a session is sent to the login page; a script gets 401.

Every answer carries a Content-Security-Policy that allows only the agent's own styles and
script (no inline script, nothing from elsewhere, no framing), ``no-store`` and ``nosniff``.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from urllib.parse import quote

from formae.api.auth import AsgiApp, Message, Principal, Receive, Scope, Send, TokenVerifier
from formae.console.session import COOKIE, SessionBook

PREFIX = "/ui"
OPEN = (f"{PREFIX}/login", f"{PREFIX}/static/")
CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make Origin "null" on our own posts
    (b"x-frame-options", b"DENY"),
]


class ConsoleGate:
    def __init__(self, app: AsgiApp, sessions: SessionBook, verifier: TokenVerifier) -> None:
        self._app = app
        self._sessions = sessions
        self._verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        send = _with_headers(send, static=scope["path"].startswith(OPEN[1]))
        if scope["path"].startswith(OPEN):
            await self._app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        principal = await self._principal(headers)
        if principal is None:
            await _refuse(scope, headers, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self._app(scope, receive, send)

    async def _principal(self, headers: dict[str, str]) -> Principal | None:
        if "authorization" in headers:
            return await self._verifier.verify(headers["authorization"])
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except CookieError:  # a malformed Cookie header is no session
            return None
        morsel = cookie.get(COOKIE)
        session = await self._sessions.find(morsel.value) if morsel else None
        return session.principal if session else None


def _with_headers(send: Send, static: bool) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            cache = b"public, max-age=300" if static else b"no-store"
            extra = [*HEADERS, (b"cache-control", cache)]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


async def _refuse(scope: Scope, headers: dict[str, str], send: Send) -> None:
    wants_page = scope["method"] == "GET" and "text/html" in headers.get("accept", "")
    if wants_page:
        target = f"{PREFIX}/login?next={quote(scope['path'], safe='/')}"
        start: Message = {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", target.encode())],
        }
        await send(start)
        await send({"type": "http.response.body", "body": b""})
        return
    body = b'{"detail": "log in to the console, or send an API token"}'
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
        }
    )
    await send({"type": "http.response.body", "body": body})
