"""Who this plugin is to its agent: the certificate it presents and the cookie it proves.

A plugin with a join token joins once and keeps what it was granted in its state directory
(key and cookie mode 0600), recording which token it came from: a restart reuses it, and a new
token (the operator re-joining the plugin, say to another agent) replaces it. The agent renews the
certificate over the live link before it expires (``agent/renewal.py``); the renewed one replaces
``plugin.crt`` and is presented at the next dial.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

from formae.plugin.settings import STATE_DIR, PluginSettings, SettingsError
from formae.wire.join import JoinGrant
from formae.wire.tls import ClientCredentials
from formae.wire.transport import join

log = logging.getLogger("formae.plugin")


@dataclass(frozen=True)
class Identity:
    credentials: ClientCredentials | None
    """None means plain gRPC: an agent running without TLS."""
    cookie: str
    grants: GrantStore | None = None
    """Where a joined plugin keeps its grant, and so the certificates the agent renews; None otherwise."""

    def __repr__(self) -> str:
        return f"Identity(tls={self.credentials is not None})"


class IdentityKeeper:
    """The identity to dial with, kept up to date with the certificates the agent renews."""

    def __init__(self, identity: Identity) -> None:
        self.current = identity

    @property
    def renews(self) -> bool:
        """True for a joined plugin: it can keep a renewed certificate (said in its announcement)."""
        return self.current.grants is not None and self.current.credentials is not None

    def renew(self, certificate_pem: bytes) -> None:
        """Keep a renewed certificate for the next dial; a bad one is logged and the old one kept."""
        grants, credentials = self.current.grants, self.current.credentials
        if grants is None or credentials is None:
            log.warning("the agent sent a certificate renewal this plugin did not ask for; ignored")
            return
        from formae.wire import certificates  # only now: cryptography is slow to import, and rarely needed

        try:
            expires = certificates.check_renewal(certificate_pem, credentials.key, credentials.ca_certificate)
            grants.keep_certificate(certificate_pem)
        except (ValueError, OSError) as error:
            log.error("renewed certificate not kept (the current one stays): %s", error)
            return
        self.current = replace(self.current, credentials=replace(credentials, certificate=certificate_pem))
        log.info("certificate renewed by the agent; valid until %s", expires.isoformat())


class GrantStore:
    """The state directory of a plugin that joined with a token."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def load(self, token_id: str) -> Identity | None:
        """What an earlier join with ``token_id`` granted, if this directory holds it."""
        try:
            meta = json.loads((self._directory / "grant.json").read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("token_id") != token_id:
                return None
            credentials = ClientCredentials.from_files(
                *(self._directory / f for f in ("plugin.crt", "plugin.key", "ca.crt"))
            )
            cookie = (self._directory / "cookie").read_text(encoding="utf-8").strip()
        except (OSError, ValueError):
            return None
        return Identity(credentials, cookie, self)

    def prepare(self) -> None:
        """Make sure the grant can be kept, before a join spends the token on it."""
        try:
            self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            probe = self._directory / ".writable"
            probe.touch()
            probe.unlink()
        except OSError as error:
            raise SettingsError(
                f"{STATE_DIR}={str(self._directory)!r} cannot hold this plugin's certificate: {error}"
            ) from None

    def save(self, token_id: str, key_pem: bytes, grant: JoinGrant) -> Identity:
        """Keep the grant; grant.json goes first and comes back last, so a half-saved one is never loaded."""
        (self._directory / "grant.json").unlink(missing_ok=True)
        _write(self._directory / "plugin.key", key_pem, private=True)
        _write(self._directory / "cookie", grant.cookie.encode(), private=True)
        _write(self._directory / "plugin.crt", grant.certificate)
        _write(self._directory / "ca.crt", grant.ca_certificate)
        meta = {"token_id": token_id, "namespaces": list(grant.namespaces)}
        _write(self._directory / "grant.json", json.dumps(meta).encode())
        credentials = ClientCredentials(grant.certificate, key_pem, grant.ca_certificate)
        return Identity(credentials, grant.cookie, self)

    def keep_certificate(self, certificate_pem: bytes) -> None:
        """Replace the certificate (renewed for the same key): whole, never half-written."""
        _write(self._directory / "plugin.crt", certificate_pem)


async def obtain_identity(settings: PluginSettings) -> Identity:
    """The plugin's identity, joining the agent first when a new token says so.

    Raises ``JoinDenied`` if the agent refuses the token, ``StreamClosed`` if it cannot be reached,
    ``SettingsError`` if the state directory cannot keep what a join would grant.
    """
    token = settings.join_token
    if settings.credentials is not None or token is None:
        return Identity(settings.credentials, settings.cookie)
    grants = GrantStore(settings.state_dir or Path.cwd())
    identity = grants.load(token.token_id)
    if identity is None:
        grants.prepare()
        from formae.wire import certificates  # only now: cryptography is slow to import, and rarely needed

        key = certificates.new_private_key()
        grant = await join(
            settings.agent_address, token, certificates.certificate_request(key, settings.node), settings.node
        )
        identity = grants.save(token.token_id, certificates.key_to_pem(key), grant)
    # an explicit FORMAE_NETWORK_COOKIE wins over the granted one: the operator said so
    return Identity(identity.credentials, settings.cookie or identity.cookie, identity.grants)


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` whole, with a file created afresh in its mode.

    Rewriting in place would keep the mode of an older file (a key left 0644) and, on a crash,
    leave half of one.
    """
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)
