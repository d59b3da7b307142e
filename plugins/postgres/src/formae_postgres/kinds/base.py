"""What every PostgreSQL resource type implements, and the helpers they share.

A kind answers in the properties PostgreSQL itself reports (``read``), so what a create or update
returns is exactly what a later read returns, and anything changed out of band (an ``ALTER ROLE``
in psql) shows as a difference. Properties PostgreSQL cannot report (a password, a template) are
never returned.

Read and list are written once, here: a kind names its ``catalog`` (the query, one row per object),
where a native id's object is (``locate``) and what a row says about it (``describe``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from formae.plugin import JsonObject, ResourceSchema
from formae_postgres.catalog import Catalog
from formae_postgres.connections import Connections, Server

TOKEN_PREFIX = "formae:"
"""Creates leave ``formae:<idempotency key>`` as the object's comment: a create retried after a crash
finds its own object by it, instead of failing on a name it took itself."""


@dataclass(frozen=True)
class Context:
    """One operation's view of its target's server."""

    connections: Connections
    server: Server

    @asynccontextmanager
    async def to(self, database: str | None = None) -> AsyncIterator[asyncpg.Connection]:
        async with self.connections.to(self.server, database) as connection:
            yield connection

    async def forget(self, database: str) -> None:
        await self.connections.forget(self.server, database)


Listed = tuple[str, JsonObject]
"""An object as discovery lists it: its native id and its properties."""


class Kind(ABC):
    schema: ResourceSchema
    catalog: Catalog

    @abstractmethod
    async def create(self, cx: Context, properties: JsonObject, token: str) -> str:
        """Create the object; its native id. A duplicate made by this same token is not an error."""

    @abstractmethod
    def locate(self, native_id: str) -> tuple[str | None, tuple[str, ...]]:
        """The database holding the object (None: the target's) and its key in ``catalog``."""

    @abstractmethod
    def describe(self, row: asyncpg.Record) -> Listed:
        """The native id and properties of the object ``row`` of ``catalog`` shows."""

    async def read(self, cx: Context, native_id: str) -> JsonObject | None:
        """The object's properties as PostgreSQL reports them; None when it does not exist."""
        database, key = self.locate(native_id)
        async with cx.to(database) as db:
            row = await self.catalog.one(db, *key)
        return None if row is None else self.describe(row)[1]

    @abstractmethod
    async def update(self, cx: Context, native_id: str, desired: JsonObject) -> None:
        """Make the object match ``desired``; create-only properties have been checked unchanged."""

    @abstractmethod
    async def delete(self, cx: Context, native_id: str) -> bool:
        """Drop the object; False when it did not exist."""

    async def list(self, cx: Context, token: str, size: int) -> tuple[list[Listed], str]:
        """A page of the objects the target's database shows (cluster-wide ones: all of them)."""
        async with cx.to() as db:
            page = await self.catalog.page(db, token, size)
        return [self.describe(row) for row in page.rows], page.next_token


def token_comment(token: str) -> str:
    return f"{TOKEN_PREFIX}{token}"


async def made_by(connection: asyncpg.Connection, query: str, name: str, token: str) -> bool:
    """True when the object ``query`` finds by ``name`` carries this create's token as its comment."""
    if not token:
        return False
    comment = await connection.fetchval(query, name)
    return bool(comment == token_comment(token))


def json_schema(
    description: str, properties: dict[str, JsonObject], required: list[str], **extra: Any
) -> JsonObject:
    """A JSON Schema (2020-12) of a resource's properties; unknown properties are refused."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "description": description,
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        **extra,
    }


NAME: JsonObject = {"type": "string", "minLength": 1, "maxLength": 63}
"""PostgreSQL truncates names to 63 bytes; a longer one would be created under another name."""
