"""API tokens: ``fma1.<id>.<secret>``, of which the agent keeps only the secret's SHA-256.

The id is public (it names the token in lists, logs and the audit log and is how it is revoked);
the secret is 32 random bytes. A token carries a role:

- ``read`` may only read (GET);
- ``operator`` may also apply, destroy, cancel and sync;
- ``admin`` may also mint join tokens, manage API tokens, rotate the secrets key and manage plugins.

The agent's own admin token sits in ``{home}/run/api.token`` (mode 0600), made at its first
start, so that whoever can read the agent's home can drive it with no configuration, and nobody
else can.
"""

from __future__ import annotations

import enum
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "fma1"
TOKEN_ENV = "FORMAE_API_TOKEN"
BOOTSTRAP_ID = "local"
"""The id of the token in ``{home}/run/api.token``."""


class TokenFormatError(ValueError):
    """The text is not an API token (a join token, a typo, a truncated copy)."""


class Role(enum.StrEnum):
    READ = "read"
    OPERATOR = "operator"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        return _RANK[self] >= _RANK[needed]


_RANK = {Role.READ: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class ApiToken:
    id: str
    secret: str = field(repr=False)

    @classmethod
    def new(cls, id: str | None = None) -> ApiToken:
        return cls(id or secrets.token_hex(8), secrets.token_urlsafe(32))

    @classmethod
    def parse(cls, text: str) -> ApiToken:
        prefix, _, rest = text.strip().partition(".")
        id, _, secret = rest.partition(".")
        if prefix != PREFIX or not id or not secret:
            raise TokenFormatError("not a formae API token (fma1.<id>.<secret>)")
        return cls(id, secret)

    def encode(self) -> str:
        return f"{PREFIX}.{self.id}.{self.secret}"

    @property
    def secret_sha256(self) -> str:
        return hash_secret(self.secret)


def hash_secret(secret: str) -> str:
    """What is stored instead of a secret: 256 random bits need no salt or stretching."""
    return hashlib.sha256(secret.encode()).hexdigest()


def token_file(home: Path) -> Path:
    return home / "run" / "api.token"


def read_token_file(home: Path) -> str | None:
    """The agent's own token, when this user may read it; None otherwise (no agent, or not ours)."""
    try:
        return token_file(home).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def load_or_create_token_file(home: Path) -> ApiToken:
    """The agent's admin token: read from ``{home}/run/api.token``, made (mode 0600) when absent."""
    path = token_file(home)
    existing = read_token_file(home)
    if existing is not None:
        try:
            return ApiToken.parse(existing)
        except TokenFormatError:
            path.unlink()  # a damaged file: a new token is as good, and the old one was unusable
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = ApiToken.new(BOOTSTRAP_ID)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(token.encode() + "\n")
    return token
