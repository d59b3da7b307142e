"""Joining: one-time tokens in, plugin certificates out.

The operator creates a token for some namespaces; the plugin on another host trades it, once,
for a certificate that names exactly those namespaces. The token's secret is shown once and kept
only as a hash; it never reaches a log line.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from formae.agent.audit import AuditLog
from formae.agent.pki import PLUGIN_VALIDITY, CertificateAuthority, PkiError, check_request
from formae.store import Datastore, JoinRefused, JoinTokenRecord, utc_now
from formae.wire.join import JoinAsk, JoinGrant, JoinToken
from formae.wire.transport import JoinDenied

log = logging.getLogger("formae.agent.joining")

DEFAULT_TTL = timedelta(hours=1)
BOOTSTRAP_GRACE = timedelta(days=1)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class JoinService:
    def __init__(
        self,
        store: Datastore,
        authority: CertificateAuthority,
        cookie: str,
        agent_address: str,
        audit: AuditLog | None = None,
        certificate_validity: timedelta = PLUGIN_VALIDITY,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._clock = clock
        """When a token is created, and so when it expires."""
        self._certificate_validity = certificate_validity
        """Of the certificate a join grants (renewed over the plugin's link: ``agent/renewal.py``)."""
        self._audit = audit
        """Every join and refusal goes there too: who (node, token id), from where (peer)."""
        self._store = store
        self._authority = authority
        self._cookie = cookie
        self.agent_address = agent_address
        """Put in tokens: how a plugin on another host dials this agent."""

    async def create_token(
        self, namespaces: list[str], ttl: timedelta = DEFAULT_TTL, agent_address: str | None = None
    ) -> tuple[JoinToken, JoinTokenRecord]:
        """A new token; the returned ``JoinToken`` is the only place its secret ever exists."""
        if not namespaces or any(not n or n == "*" or "::" in n for n in namespaces):
            raise ValueError("give one or more namespaces, e.g. --namespace AWS")
        now = self._clock()
        token_id = secrets.token_hex(8)
        # outlives the token, so a late plugin gets a clear "expired" answer instead of a failed handshake
        bootstrap = self._authority.bootstrap_keypair(token_id, ttl + BOOTSTRAP_GRACE)
        token = JoinToken(
            agent_address or self.agent_address,
            token_id,
            secrets.token_urlsafe(32),
            self._authority.certificate_pem,
            bootstrap.certificate_pem,
            bootstrap.key_pem,
        )
        record = JoinTokenRecord(
            token.token_id, _digest(token.secret), tuple(sorted(set(namespaces))), now, now + ttl
        )
        await self._store.create_join_token(record)
        log.info(
            "join token created id=%s namespaces=%s expires=%s",
            record.id,
            ",".join(record.namespaces),
            record.expires_at.isoformat(timespec="seconds"),
        )
        return token, record

    async def join(self, ask: JoinAsk) -> JoinGrant:
        """The grant for a valid, unused token; ``JoinDenied`` (logged) otherwise."""
        try:
            check_request(ask.certificate_request)  # before the token is spent on a request we cannot sign
            record = await self._store.redeem_join_token(ask.token_id, _digest(ask.secret), ask.node)
            certificate = self._authority.sign_plugin_request(
                ask.certificate_request, frozenset(record.namespaces), self._certificate_validity
            )
        except (JoinRefused, PkiError) as error:
            log.warning("Plugin join refused node=%s peer=%s: %s", ask.node, ask.peer, error)
            if self._audit:
                self._audit.record(
                    ask.node, "join", ask.peer, "refused", token=ask.token_id, reason=str(error)
                )
            raise JoinDenied(str(error)) from None
        if self._audit:
            self._audit.record(
                ask.node, "join", ask.peer, token=record.id, namespaces=list(record.namespaces)
            )
        log.info(
            "Plugin joined node=%s peer=%s token=%s namespaces=%s",
            ask.node,
            ask.peer,
            record.id,
            ",".join(record.namespaces),
        )
        return JoinGrant(certificate, self._authority.certificate_pem, self._cookie, record.namespaces)
