"""The API's gate: the Host header, the bearer token, the role each route needs, the audit trail.

An ASGI middleware in front of every route, so that a route added later is guarded without
anyone remembering to: reads (GET, HEAD) need a ``read`` token; every other method needs
``operator``; join tokens, API tokens, the secrets key and plugin management need ``admin``.
Only ``/api/v1/health`` answers without a token (the CLI's liveness probe).

The Host header must name the agent (loopback names, or the names it was configured with): a
web page in a browser cannot use DNS rebinding to talk to an agent on 127.0.0.1.

Failed authentications are logged with the peer's address, at most once per peer every
``quiet_seconds`` (with the number left unsaid), so a flood cannot fill the disk.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from formae.agent.audit import AuditLog
from formae.auth import ApiToken, Role, TokenFormatError
from formae.store import Datastore, utc_now

log = logging.getLogger("formae.api.auth")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/api/v1/health"})
_ADMIN_PREFIXES = ("/api/v1/plugins", "/api/v1/auth", "/api/v1/secrets")
_READ_METHODS = frozenset({"GET", "HEAD"})
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def required_role(method: str, path: str) -> Role | None:
    """The least role a request needs; None for the open paths."""
    if path in OPEN_PATHS:
        return None
    if path.startswith(("/api/v1/auth", "/api/v1/agent")):
        return Role.ADMIN  # even listing tokens tells an attacker which ids to aim at; so does the config
    if method in _READ_METHODS:
        return Role.READ
    if path.startswith(_ADMIN_PREFIXES):
        return Role.ADMIN
    return Role.OPERATOR


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's id and role."""

    token_id: str
    role: Role
    expires_at: datetime | None = None
    """When the token stops being valid; None: never (the agent's own, or minted without a TTL)."""


class TokenVerifier:
    """Bearer tokens to principals: the agent's own token, then those minted into the store."""

    def __init__(self, store: Datastore, own: ApiToken) -> None:
        self._store = store
        self._own = own

    async def verify(self, authorization: str | None) -> Principal | None:
        scheme, _, text = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            token = ApiToken.parse(text)
        except TokenFormatError:
            return None
        return await self.verify_hash(token.id, token.secret_sha256)

    async def verify_hash(self, token_id: str, secret_sha256: str) -> Principal | None:
        """The principal of the token ``token_id`` whose secret hashes to ``secret_sha256``, while valid.

        What a console session keeps instead of the token, so that a revoked token ends it at once.
        """
        if token_id == self._own.id:
            same = hmac.compare_digest(secret_sha256, self._own.secret_sha256)
            return Principal(token_id, Role.ADMIN) if same else None
        record = await self._store.get_api_token(token_id)
        if record is None or not record.valid(secret_sha256, utc_now()):
            return None
        return Principal(record.id, Role(record.role), record.expires_at)


class FailureThrottle:
    """Whether to report a peer's failed authentication now, and how many went unreported before it."""

    def __init__(self, quiet_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._quiet = quiet_seconds
        self._clock = clock
        self._last: dict[str, float] = {}
        self._unsaid: dict[str, int] = {}

    def report(self, peer: str) -> int | None:
        """None to stay quiet; else the number of failures from ``peer`` not reported since the last."""
        now = self._clock()
        last = self._last.get(peer)
        if last is not None and now - last < self._quiet:
            self._unsaid[peer] = self._unsaid.get(peer, 0) + 1
            return None
        if len(self._last) > 10_000:  # many peers: forget the quiet ones rather than grow forever
            self._last = {p: t for p, t in self._last.items() if now - t < self._quiet}
        self._last[peer] = now
        return self._unsaid.pop(peer, 0)


@dataclass
class ApiAccess:
    """What the gate needs: who may call, which Host names are ours, where to write the audit trail."""

    verifier: TokenVerifier
    allowed_hosts: frozenset[str]
    """Host header names accepted (without the port); ``*`` accepts any."""
    audit: AuditLog
    throttle: FailureThrottle
    self_guarded: tuple[str, ...] = ()
    """Path prefixes whose app authenticates its own requests (the web console's session cookie);
    the Host check still applies to them."""


class ApiGuard:
    """ASGI middleware enforcing ``ApiAccess`` on every HTTP request."""

    def __init__(self, app: AsgiApp, access: ApiAccess) -> None:
        self._app = app
        self._access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = _headers(scope)
        if not self._host_allowed(headers.get("host", "")):
            await _answer(send, 400, "the Host header does not name this agent")
            return
        method, path, peer = scope["method"], scope["path"], _peer(scope)
        needed = required_role(method, path)
        if needed is None or _under(path, self._access.self_guarded):
            await self._app(scope, receive, send)
            return
        principal = await self._access.verifier.verify(headers.get("authorization"))
        if principal is None:
            self._failed(peer, method, path)
            await _answer(send, 401, "a valid API token is needed", {"www-authenticate": "Bearer"})
            return
        if not principal.role.allows(needed):
            self._access.audit.record(principal.token_id, f"{method} {path}", peer, "forbidden")
            await _answer(send, 403, f"this needs a token with role {needed} (this one is {principal.role})")
            return
        scope.setdefault("state", {})["principal"] = principal
        if method in _READ_METHODS:
            await self._app(scope, receive, send)
            return
        await self._audited(scope, receive, send, principal, peer)

    async def _audited(self, scope: Scope, receive: Receive, send: Send, who: Principal, peer: str) -> None:
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            outcome = "ok" if status < 400 else f"refused {status}"
            what = f"{scope['method']} {scope['path']}"
            self._access.audit.record(who.token_id, what, peer, outcome, role=str(who.role))

    def _host_allowed(self, host: str) -> bool:
        allowed = self._access.allowed_hosts
        return "*" in allowed or _host_name(host) in allowed

    def _failed(self, peer: str, method: str, path: str) -> None:
        unsaid = self._access.throttle.report(peer.rpartition(":")[0] or peer)
        if unsaid is None:
            return
        more = f" (and {unsaid} more since the last report)" if unsaid else ""
        log.warning("API authentication failed peer=%s request=%s %s%s", peer, method, path, more)
        self._access.audit.record("anonymous", f"{method} {path}", peer, "unauthenticated", unreported=unsaid)


def allowed_hosts(bind_host: str, names: Iterable[str]) -> frozenset[str]:
    """Loopback names, the host the API is bound to (unless a wildcard), and the configured names."""
    host = bind_host.strip("[]")
    bound = {host} if host not in ("0.0.0.0", "::", "") else set()
    return frozenset(LOOPBACK_NAMES | bound | {n.strip("[]") for n in names})


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    """``path`` is one of ``prefixes`` or below one (``/ui``, ``/ui/x``; not ``/uix``)."""
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def _host_name(host: str) -> str:
    """``host[:port]`` or ``[v6]:port`` without the port."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"


async def _answer(send: Send, status: int, detail: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
