"""PostgreSQL::Schema: a schema inside a database, and its owner.

Its native id is ``database/schema`` (each part percent-encoded), since a schema's name is only
unique within its database.
"""

from __future__ import annotations

import asyncpg

from formae.plugin import JsonObject, ResourceSchema
from formae_postgres.kinds.base import NAME, Context, Kind, json_schema, made_by, token_comment
from formae_postgres.sql import ident, join_id, literal, optional_text, split_id, text

TYPE = "PostgreSQL::Schema"

_READ = """
SELECT n.nspname, pg_get_userbyid(n.nspowner) AS owner FROM pg_namespace n WHERE n.nspname = $1
"""
_LIST = """
SELECT n.nspname, pg_get_userbyid(n.nspowner) AS owner FROM pg_namespace n
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY n.nspname
"""
_COMMENT = "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1"

SCHEMA = ResourceSchema(
    TYPE,
    identifier="Id",
    create_only=("Database", "Name"),
    read_only=("Id",),
    json_schema=json_schema(
        "A schema in a database.",
        {
            "Database": {**NAME, "description": "The database holding the schema."},
            "Name": NAME,
            "Owner": {**NAME, "description": "The owning role (default: the role the plugin connects as)."},
            "Id": {"type": "string", "readOnly": True, "description": "database/schema"},
        },
        ["Database", "Name"],
    ),
)


class SchemaKind(Kind):
    schema = SCHEMA

    async def create(self, cx: Context, properties: JsonObject, token: str) -> str:
        database, name = text(properties, "Database"), text(properties, "Name")
        owner = optional_text(properties, "Owner")
        authorization = f" AUTHORIZATION {ident(owner)}" if owner else ""
        async with cx.to(database) as db, db.transaction():
            try:
                async with db.transaction():  # a savepoint: the duplicate must not abort the whole
                    await db.execute(f"CREATE SCHEMA {ident(name)}{authorization}")
            except asyncpg.DuplicateSchemaError:
                if await made_by(db, _COMMENT, name, token):
                    return join_id(database, name)
                raise
            if token:
                await db.execute(f"COMMENT ON SCHEMA {ident(name)} IS {literal(token_comment(token))}")
        return join_id(database, name)

    async def read(self, cx: Context, native_id: str) -> JsonObject | None:
        database, name = split_id(native_id, 2)
        async with cx.to(database) as db:
            row = await db.fetchrow(_READ, name)
        return None if row is None else _properties(database, row)

    async def update(self, cx: Context, native_id: str, desired: JsonObject) -> None:
        database, name = split_id(native_id, 2)
        owner = optional_text(desired, "Owner")
        if owner is not None:
            async with cx.to(database) as db:
                await db.execute(f"ALTER SCHEMA {ident(name)} OWNER TO {ident(owner)}")

    async def delete(self, cx: Context, native_id: str) -> bool:
        database, name = split_id(native_id, 2)
        async with cx.to(database) as db:
            try:
                await db.execute(f"DROP SCHEMA {ident(name)}")
            except asyncpg.InvalidSchemaNameError:
                return False
        return True

    async def list(self, cx: Context) -> list[tuple[str, JsonObject]]:
        async with cx.to() as db:
            rows = await db.fetch(_LIST)
        database = cx.server.database
        return [(join_id(database, row["nspname"]), _properties(database, row)) for row in rows]


def _properties(database: str, row: asyncpg.Record) -> JsonObject:
    name = row["nspname"]
    return {"Database": database, "Name": name, "Owner": row["owner"], "Id": join_id(database, name)}
