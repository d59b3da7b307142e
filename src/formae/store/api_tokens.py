"""The API tokens the agent has minted beyond its own: kept as a hash, a role and a lifetime.

A mixin of ``Datastore`` so that the queries sit together, away from commands and resources.
Verification compares hashes here, in constant time, so a caller learns only yes or no.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from formae.store._dialect import Dialect, Row, Tx
from formae.store.group_commit import GroupCommitter
from formae.store.records import utc_now

T = TypeVar("T")

_COLUMNS = ("id", "role", "secret_sha256", "description", "created_at", "expires_at", "revoked_at")
_INSERT = f"INSERT INTO api_tokens ({', '.join(_COLUMNS)}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
_GET = "SELECT * FROM api_tokens WHERE id = $1"
_LIST = "SELECT * FROM api_tokens ORDER BY created_at, id"
_REVOKE = "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING id"


@dataclass(frozen=True, slots=True)
class ApiTokenRecord:
    """An API token as kept: the secret only as its SHA-256."""

    id: str
    role: str
    secret_sha256: str
    description: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def valid(self, secret_sha256: str, now: datetime) -> bool:
        """The secret matches, and the token is neither revoked nor expired."""
        matches = hmac.compare_digest(self.secret_sha256, secret_sha256)
        alive = self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
        return matches and alive


class ApiTokenStore:
    """What ``Datastore`` provides for API tokens; relies on its committer, reader and dialect."""

    _dialect: Dialect
    _committer: GroupCommitter
    _read: Callable[[str, Callable[[Tx], Awaitable[Any]]], Awaitable[Any]]

    async def create_api_token(self, token: ApiTokenRecord) -> None:
        d = self._dialect
        params = (
            token.id, token.role, token.secret_sha256, token.description,
            d.encode_time(token.created_at), d.encode_time(token.expires_at), d.encode_time(token.revoked_at),
        )  # fmt: skip

        async def write(tx: Tx) -> None:
            await tx.execute(_INSERT, *params)

        await self._committer.submit(write)

    async def get_api_token(self, token_id: str) -> ApiTokenRecord | None:
        d = self._dialect

        async def query(tx: Tx) -> list[ApiTokenRecord]:
            return [_from_row(d, r) for r in await tx.fetch(_GET, token_id)]

        found: list[ApiTokenRecord] = await self._read("reading API tokens", query)
        return found[0] if found else None

    async def list_api_tokens(self) -> list[ApiTokenRecord]:
        d = self._dialect

        async def query(tx: Tx) -> list[ApiTokenRecord]:
            return [_from_row(d, r) for r in await tx.fetch(_LIST)]

        found: list[ApiTokenRecord] = await self._read("listing API tokens", query)
        return found

    async def revoke_api_token(self, token_id: str) -> bool:
        """Revoke a live token; False when there is no such token or it was already revoked."""
        now = self._dialect.encode_time(utc_now())

        async def write(tx: Tx) -> bool:
            return bool(await tx.fetch(_REVOKE, token_id, now))

        revoked: bool = await self._committer.submit(write)
        return revoked


def _from_row(d: Dialect, r: Row) -> ApiTokenRecord:
    return ApiTokenRecord(
        id=r["id"],
        role=r["role"],
        secret_sha256=r["secret_sha256"],
        description=r["description"],
        created_at=d.decode_time(r["created_at"]),
        expires_at=d.decode_optional_time(r["expires_at"]),
        revoked_at=d.decode_optional_time(r["revoked_at"]),
    )
