"""PostgreSQL::Database: a database, its owner and connection settings.

Template, encoding and locale are fixed when a database is created (create-only: changing them
replaces the database). The template is not something PostgreSQL remembers, so it is never read
back. ``CREATE DATABASE`` cannot run inside a transaction, so the idempotency comment follows it.
"""

from __future__ import annotations

import asyncpg

from formae.plugin import JsonObject, ResourceSchema
from formae_postgres.catalog import Catalog
from formae_postgres.kinds.base import NAME, Context, Kind, Listed, json_schema, made_by, token_comment
from formae_postgres.sql import flag, ident, literal, number, optional_text, text

TYPE = "PostgreSQL::Database"

CATALOG = Catalog(
    """
    SELECT d.datname, pg_get_userbyid(d.datdba) AS owner, pg_encoding_to_char(d.encoding) AS encoding,
           d.datcollate, d.datctype, d.datconnlimit, d.datallowconn, d.datistemplate
    FROM pg_database d
    """,
    key=("datname",),
    listed="NOT datistemplate",
)
_COMMENT = "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1"

SCHEMA = ResourceSchema(
    TYPE,
    identifier="Name",
    create_only=("Name", "Template", "Encoding", "LcCollate", "LcCtype"),
    json_schema=json_schema(
        "A database on the target's server.",
        {
            "Name": {**NAME, "description": "The database's name; changing it replaces the database."},
            "Owner": {**NAME, "description": "The owning role (default: the role the plugin connects as)."},
            "Template": {
                **NAME,
                "writeOnly": True,
                "description": "The database copied (default template1); PostgreSQL does not remember it.",
            },
            "Encoding": {"type": "string", "description": "Character set, e.g. UTF8."},
            "LcCollate": {"type": "string", "description": "Collation order, e.g. C or en_US.UTF-8."},
            "LcCtype": {"type": "string", "description": "Character classification."},
            "ConnectionLimit": {"type": "integer", "minimum": -1, "default": -1},
            "AllowConnections": {"type": "boolean", "default": True},
            "IsTemplate": {"type": "boolean", "default": False},
        },
        ["Name"],
    ),
)


class DatabaseKind(Kind):
    schema = SCHEMA
    catalog = CATALOG

    async def create(self, cx: Context, properties: JsonObject, token: str) -> str:
        name = text(properties, "Name")
        async with cx.to() as db:
            try:
                await db.execute(f"CREATE DATABASE {ident(name)}{_create_options(properties)}")
            except asyncpg.DuplicateDatabaseError:
                if await made_by(db, _COMMENT, name, token):
                    return name
                raise
            if token:
                await db.execute(f"COMMENT ON DATABASE {ident(name)} IS {literal(token_comment(token))}")
            await db.execute(f"ALTER DATABASE {ident(name)} WITH {_settings(properties)}")
        return name

    def locate(self, native_id: str) -> tuple[str | None, tuple[str, ...]]:
        return None, (native_id,)

    def describe(self, row: asyncpg.Record) -> Listed:
        return row["datname"], {
            "Name": row["datname"],
            "Owner": row["owner"],
            "Encoding": row["encoding"],
            "LcCollate": row["datcollate"],
            "LcCtype": row["datctype"],
            "ConnectionLimit": row["datconnlimit"],
            "AllowConnections": row["datallowconn"],
            "IsTemplate": row["datistemplate"],
        }

    async def update(self, cx: Context, native_id: str, desired: JsonObject) -> None:
        async with cx.to() as db:
            if await db.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", native_id) is None:
                raise asyncpg.InvalidCatalogNameError(f'database "{native_id}" does not exist')
            owner = optional_text(desired, "Owner")
            if owner is not None:
                await db.execute(f"ALTER DATABASE {ident(native_id)} OWNER TO {ident(owner)}")
            await db.execute(f"ALTER DATABASE {ident(native_id)} WITH {_settings(desired)}")

    async def delete(self, cx: Context, native_id: str) -> bool:
        await cx.forget(native_id)
        async with cx.to() as db:
            if await db.fetchval("SELECT datistemplate FROM pg_database WHERE datname = $1", native_id):
                await db.execute(f"ALTER DATABASE {ident(native_id)} WITH IS_TEMPLATE false")
            try:
                await db.execute(f"DROP DATABASE {ident(native_id)}")
            except asyncpg.InvalidCatalogNameError:
                return False
        return True


def _create_options(properties: JsonObject) -> str:
    options = [
        f"{keyword} {render(value)}"
        for prop, keyword, render in (
            ("Owner", "OWNER", ident),
            ("Template", "TEMPLATE", ident),
            ("Encoding", "ENCODING", literal),
            ("LcCollate", "LC_COLLATE", literal),
            ("LcCtype", "LC_CTYPE", literal),
        )
        if (value := optional_text(properties, prop)) is not None
    ]
    return " WITH " + " ".join(options) if options else ""


def _settings(properties: JsonObject) -> str:
    return (
        f"CONNECTION LIMIT {number(properties, 'ConnectionLimit', -1)}"
        f" ALLOW_CONNECTIONS {str(flag(properties, 'AllowConnections', True)).lower()}"
        f" IS_TEMPLATE {str(flag(properties, 'IsTemplate', False)).lower()}"
    )
