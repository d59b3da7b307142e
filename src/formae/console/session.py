"""Console sessions: an API token exchanged once for an HttpOnly, SameSite=Strict cookie.

A browser cannot send a bearer header when it follows a link, so the console's login form takes
an API token once and answers with a cookie naming a session. The session keeps the token's id
and the hash of its secret (never the secret), its role, and an end: the token's own expiry or
``LIFETIME``, whichever is first. Every request re-checks the token through the API's verifier,
so a revoked token ends its sessions at once. Sessions live in the agent's memory only: a
restart logs everyone out. The book holds at most ``MAX_SESSIONS``; the oldest go first.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends
it), ``Path=/ui`` (the REST API never accepts it) and ``Secure`` when the API speaks TLS. Why
that is enough against cross-site request forgery: the console is read-only, so a forged
request can change nothing, and the only forms (login, logout) check the ``Origin`` header.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from formae.api.auth import Principal, TokenVerifier
from formae.auth import ApiToken, TokenFormatError

COOKIE = "formae_console"
LIFETIME = timedelta(hours=8)
MAX_SESSIONS = 1000


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    token_id: str
    secret_sha256: str
    principal: Principal
    expires_at: datetime

    def max_age(self, now: datetime) -> int:
        return max(0, int((self.expires_at - now).total_seconds()))


def _utc_now() -> datetime:
    return datetime.fromtimestamp(time.time(), UTC)


class SessionBook:
    """The console's live sessions, by id; ``clock`` is injected so tests need not wait."""

    def __init__(self, verifier: TokenVerifier, clock: Callable[[], datetime] = _utc_now) -> None:
        self._verifier = verifier
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    async def open(self, token_text: str) -> Session | None:
        """A new session for a valid token; None for anything else (the caller says only "refused")."""
        try:
            token = ApiToken.parse(token_text)
        except TokenFormatError:
            return None
        principal = await self._verifier.verify_hash(token.id, token.secret_sha256)
        if principal is None:
            return None
        now = self._clock()
        end = now + LIFETIME
        if principal.expires_at is not None:
            end = min(end, principal.expires_at)
        session = Session(secrets.token_urlsafe(32), token.id, token.secret_sha256, principal, end)
        self._sessions[session.id] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session

    async def find(self, session_id: str) -> Session | None:
        """The session, while it and its token are both valid; a dead one is forgotten."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires_at <= self._clock():
            self.close(session_id)
            return None
        if await self._verifier.verify_hash(session.token_id, session.secret_sha256) is None:
            self.close(session_id)  # the token was revoked (or expired) since the login
            return None
        return session

    def close(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def now(self) -> datetime:
        return self._clock()

    def __len__(self) -> int:
        return len(self._sessions)
