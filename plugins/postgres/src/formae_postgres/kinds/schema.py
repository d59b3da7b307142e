"""PostgreSQL::Schema: a schema inside a database, and its owner.

Its native id is ``database/schema`` (each part percent-encoded), since a schema's name is only
unique within its database.
"""

from __future__ import annotations

import asyncpg

from formae.plugin import JsonObject, ResourceSchema
from formae_postgres.catalog import Catalog
from formae_postgres.kinds.base import NAME, Context, Kind, Listed, json_schema, made_by, token_comment
from formae_postgres.sql import ident, join_id, literal, optional_text, split_id, text

TYPE = "PostgreSQL::Schema"

CATALOG = Catalog(
    """
    SELECT current_database() AS database, n.nspname, pg_get_userbyid(n.nspowner) AS owner
    FROM pg_namespace n
    """,
    key=("nspname",),
    listed="nspname !~ '^pg_' AND nspname <> 'information_schema'",
)
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
    catalog = CATALOG

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

    def locate(self, native_id: str) -> tuple[str | None, tuple[str, ...]]:
        database, name = split_id(native_id, 2)
        return database, (name,)

    def describe(self, row: asyncpg.Record) -> Listed:
        native_id = join_id(row["database"], row["nspname"])
        return native_id, {
            "Database": row["database"],
            "Name": row["nspname"],
            "Owner": row["owner"],
            "Id": native_id,
        }

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
