"""Certificate renewal: a joined plugin's certificate is renewed over its live link, long before it expires.

A plugin on another host trades its one-time join token for a certificate once. Without renewal it
would be locked out the day that certificate expires (90 days by default), and only the operator
making a new token would let it back. The agent knows the certificate every plugin connected with
(TLS verified it against the agent's CA), so it can renew it without asking anything of the plugin:
when a third of the validity is left (two thirds into its life), it signs a new certificate for the
same key, subject and namespaces and sends it on the stream; the plugin keeps it for its next
Connect. The link itself goes on: an established TLS connection does not care that the certificate
it was opened with expires.

Only a plugin that said it keeps renewals (``Announcement.renews_certificate``) is sent any: an
older plugin would not know the frame.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from cryptography import x509

from formae.agent.pki import PLUGIN_VALIDITY, CertificateAuthority, PkiError
from formae.wire.frames import CertificateRenewal
from formae.wire.transport import StreamClosed

log = logging.getLogger("formae.agent.renewal")

Send = Callable[[CertificateRenewal], Awaitable[None]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CertificateRenewer:
    """Renews the certificate of one link after another; one ``serve`` per link, for the link's life."""

    def __init__(
        self,
        authority: CertificateAuthority,
        validity: timedelta = PLUGIN_VALIDITY,
        *,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._authority = authority
        self.validity = validity
        """Of every certificate this agent issues to a joined plugin, at its join and at each renewal."""
        self._clock = clock
        self._sleep = sleep

    def due(self, certificate_pem: bytes) -> datetime:
        """When ``certificate_pem`` is to be renewed: when a third of ``validity`` is left of it."""
        expires = x509.load_pem_x509_certificate(certificate_pem).not_valid_after_utc
        return expires - self.validity / 3

    async def serve(self, send: Send, certificate_pem: bytes, node: str) -> None:
        """Renew the link's certificate each time it falls due, until the link ends (cancelled or closed)."""
        current = certificate_pem
        while True:
            await self._sleep(max(0.0, (self.due(current) - self._clock()).total_seconds()))
            try:
                current = self._authority.renew_plugin_certificate(current, self.validity)
                await send(CertificateRenewal(current))
            except PkiError as error:
                log.error("Plugin certificate not renewed node=%s: %s", node, error)
                return
            except StreamClosed:
                return  # the link is ending; its next Connect brings the certificate to renew
            expires = x509.load_pem_x509_certificate(current).not_valid_after_utc
            log.info("Plugin certificate renewed node=%s expires=%s", node, expires.isoformat())
