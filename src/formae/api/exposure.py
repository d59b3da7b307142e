"""How the REST API is exposed: its token gate, the Host names it answers to, and TLS.

On loopback the API speaks plain HTTP by default: only this host can reach it, and the token
keeps other local users out. Beyond loopback it speaks TLS with a certificate from the agent's
own CA (``{home}/pki``, the one plugins already trust), naming the listen address and every
``--api-name``; clients verify it with ``{home}/pki/ca.crt``. ``--insecure-api`` serves plain
HTTP beyond loopback anyway, and the agent says so in its log at every start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from formae.agent.audit import AuditLog
from formae.agent.config import AgentConfig
from formae.agent.pki import CertificateAuthority, write_private
from formae.api.auth import ApiAccess, FailureThrottle, TokenVerifier, allowed_hosts
from formae.auth import load_or_create_token_file
from formae.store import Datastore

log = logging.getLogger("formae.api")

_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


@dataclass(frozen=True)
class ApiExposure:
    access: ApiAccess
    certificate: Path | None = None
    """The API's TLS certificate file; None for plain HTTP."""
    key: Path | None = None
    ca: Path | None = None
    """What clients verify the certificate with."""

    @property
    def scheme(self) -> str:
        return "https" if self.certificate else "http"

    @classmethod
    def prepare(cls, config: AgentConfig, store: Datastore, audit: AuditLog) -> ApiExposure:
        host = config.api_address.rpartition(":")[0]
        own = load_or_create_token_file(config.home)
        access = ApiAccess(
            TokenVerifier(store, own), allowed_hosts(host, config.api_names), audit, FailureThrottle()
        )
        if not config.api_uses_tls:
            if not config.api_on_loopback:
                log.warning(
                    "the REST API listens on %s without TLS (--insecure-api): API tokens and formas "
                    "cross the network in clear",
                    config.api_address,
                )
            return cls(access)
        return cls(access, *_certificate(config, host))


def _certificate(config: AgentConfig, host: str) -> tuple[Path, Path, Path]:
    """A fresh server certificate for the API at every start, from the agent's CA."""
    authority = CertificateAuthority.load_or_create(config.pki_dir)
    names = [n for n in (host.strip("[]"), *config.api_names) if n not in _WILDCARDS]
    pair = authority.server_keypair(names)
    certificate, key = config.pki_dir / "api.crt", config.pki_dir / "api.key"
    write_private(key, pair.key_pem)
    certificate.write_bytes(pair.certificate_pem)
    return certificate, key, config.pki_dir / "ca.crt"
