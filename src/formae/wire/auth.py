"""Mutual proof of the shared network cookie, without the cookie ever crossing the wire.

Each side sends a fresh nonce; each proves knowledge of the cookie with an HMAC over both nonces
and a role label, so a proof can be neither replayed on another stream nor reflected back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

NONCE_BYTES = 32
_PLUGIN_ROLE = b"formae-plugin"
_AGENT_ROLE = b"formae-agent"


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def _proof(cookie: str, role: bytes, first: bytes, second: bytes) -> bytes:
    return hmac.new(cookie.encode(), role + first + second, hashlib.sha256).digest()


def plugin_proof(cookie: str, agent_nonce: bytes, plugin_nonce: bytes) -> bytes:
    return _proof(cookie, _PLUGIN_ROLE, agent_nonce, plugin_nonce)


def agent_proof(cookie: str, agent_nonce: bytes, plugin_nonce: bytes) -> bytes:
    return _proof(cookie, _AGENT_ROLE, plugin_nonce, agent_nonce)


def verify(expected: bytes, presented: bytes) -> bool:
    return hmac.compare_digest(expected, presented)


def negotiate(ours: tuple[int, ...], theirs: tuple[int, ...]) -> int | None:
    """The highest protocol version both sides speak, or None."""
    common = set(ours) & set(theirs)
    return max(common) if common else None
