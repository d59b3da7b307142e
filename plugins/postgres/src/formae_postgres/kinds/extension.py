"""PostgreSQL::Extension: an extension installed in a database, its schema and version.

Its native id is ``database/extension``. The schema and the version change in place
(``ALTER EXTENSION … SET SCHEMA`` / ``UPDATE TO``); the comment is the extension's own, so an
extension carries no idempotency token and a retried create of one that exists is AlreadyExists.
"""

from __future__ import annotations

import asyncpg

from formae.plugin import JsonObject, ResourceSchema
from formae_postgres.kinds.base import NAME, Context, Kind, json_schema
from formae_postgres.sql import ident, join_id, literal, optional_text, split_id, text

TYPE = "PostgreSQL::Extension"

_READ = """
SELECT e.extname, n.nspname AS schema, e.extversion FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = $1
"""
_LIST = _READ.replace("WHERE e.extname = $1", "WHERE e.extname <> 'plpgsql' ORDER BY e.extname")

SCHEMA = ResourceSchema(
    TYPE,
    identifier="Id",
    create_only=("Database", "Name"),
    read_only=("Id",),
    json_schema=json_schema(
        "An extension installed in a database (it must be available on the server).",
        {
            "Database": {**NAME, "description": "The database the extension is installed in."},
            "Name": {**NAME, "description": "e.g. pgcrypto, citext, hstore"},
            "Schema": {
                **NAME,
                "description": "Where its objects go (default: the first of the search path).",
            },
            "Version": {"type": "string", "description": "Default: the extension's default version."},
            "Id": {"type": "string", "readOnly": True, "description": "database/extension"},
        },
        ["Database", "Name"],
    ),
)


class ExtensionKind(Kind):
    schema = SCHEMA

    async def create(self, cx: Context, properties: JsonObject, token: str) -> str:
        database, name = text(properties, "Database"), text(properties, "Name")
        clauses = ""
        if (schema := optional_text(properties, "Schema")) is not None:
            clauses += f" SCHEMA {ident(schema)}"
        if (version := optional_text(properties, "Version")) is not None:
            clauses += f" VERSION {literal(version)}"
        async with cx.to(database) as db:
            await db.execute(f"CREATE EXTENSION {ident(name)}{clauses}")
        return join_id(database, name)

    async def read(self, cx: Context, native_id: str) -> JsonObject | None:
        database, name = split_id(native_id, 2)
        async with cx.to(database) as db:
            row = await db.fetchrow(_READ, name)
        return None if row is None else _properties(database, row)

    async def update(self, cx: Context, native_id: str, desired: JsonObject) -> None:
        database, name = split_id(native_id, 2)
        async with cx.to(database) as db, db.transaction():
            row = await db.fetchrow(_READ, name)
            if row is None:
                raise asyncpg.UndefinedObjectError(f'extension "{name}" does not exist')
            schema = optional_text(desired, "Schema")
            if schema is not None and schema != row["schema"]:
                await db.execute(f"ALTER EXTENSION {ident(name)} SET SCHEMA {ident(schema)}")
            version = optional_text(desired, "Version")
            if version is not None and version != row["extversion"]:
                await db.execute(f"ALTER EXTENSION {ident(name)} UPDATE TO {literal(version)}")

    async def delete(self, cx: Context, native_id: str) -> bool:
        database, name = split_id(native_id, 2)
        async with cx.to(database) as db:
            try:
                await db.execute(f"DROP EXTENSION {ident(name)}")
            except asyncpg.UndefinedObjectError:
                return False
        return True

    async def list(self, cx: Context) -> list[tuple[str, JsonObject]]:
        async with cx.to() as db:
            rows = await db.fetch(_LIST)
        database = cx.server.database
        return [(join_id(database, row["extname"]), _properties(database, row)) for row in rows]


def _properties(database: str, row: asyncpg.Record) -> JsonObject:
    name = row["extname"]
    return {
        "Database": database,
        "Name": name,
        "Schema": row["schema"],
        "Version": row["extversion"],
        "Id": join_id(database, name),
    }
