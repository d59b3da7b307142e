"""PostgreSQL::Extension: an extension installed in a database, its schema and version.

Its native id is ``database/extension``. The schema and the version change in place
(``ALTER EXTENSION … SET SCHEMA`` / ``UPDATE TO``); the comment is the extension's own, so an
extension carries no idempotency token and a retried create of one that exists is AlreadyExists.
"""

from __future__ import annotations

import asyncpg

from formae.plugin import JsonObject, ResourceSchema
from formae_postgres.catalog import Catalog
from formae_postgres.kinds.base import NAME, Context, Kind, Listed, json_schema
from formae_postgres.sql import ident, join_id, literal, optional_text, split_id, text

TYPE = "PostgreSQL::Extension"

CATALOG = Catalog(
    """
    SELECT current_database() AS database, e.extname, n.nspname AS schema, e.extversion
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    """,
    key=("extname",),
    listed="extname <> 'plpgsql'",
)

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
    catalog = CATALOG

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

    def locate(self, native_id: str) -> tuple[str | None, tuple[str, ...]]:
        database, name = split_id(native_id, 2)
        return database, (name,)

    def describe(self, row: asyncpg.Record) -> Listed:
        native_id = join_id(row["database"], row["extname"])
        return native_id, {
            "Database": row["database"],
            "Name": row["extname"],
            "Schema": row["schema"],
            "Version": row["extversion"],
            "Id": native_id,
        }

    async def update(self, cx: Context, native_id: str, desired: JsonObject) -> None:
        database, name = split_id(native_id, 2)
        async with cx.to(database) as db, db.transaction():
            row = await CATALOG.one(db, name)
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
