"""PostgreSQL::Role: a login or group role, its attributes, password and memberships.

Every attribute has PostgreSQL's default when the forma leaves it out, so removing a line from the
forma resets the attribute. The password is write-only: it is sent to the server as a SCRAM
verifier, set on create and whenever an update carries one, and never read back.
"""

from __future__ import annotations

import asyncpg

from formae.plugin import JsonObject, ResourceSchema
from formae_postgres.catalog import Catalog
from formae_postgres.kinds.base import NAME, Context, Kind, Listed, json_schema, made_by, token_comment
from formae_postgres.sql import (
    Invalid,
    flag,
    ident,
    literal,
    names,
    number,
    optional_text,
    scram_verifier,
    text,
)

TYPE = "PostgreSQL::Role"

_COLUMNS = {  # property: the column of pg_roles reporting it
    "Login": "rolcanlogin",
    "Superuser": "rolsuper",
    "CreateDatabase": "rolcreatedb",
    "CreateRole": "rolcreaterole",
    "Inherit": "rolinherit",
    "Replication": "rolreplication",
    "BypassRowLevelSecurity": "rolbypassrls",
}
_FLAGS = {  # property: (keyword, default)
    "Login": ("LOGIN", False),
    "Superuser": ("SUPERUSER", False),
    "CreateDatabase": ("CREATEDB", False),
    "CreateRole": ("CREATEROLE", False),
    "Inherit": ("INHERIT", True),
    "Replication": ("REPLICATION", False),
    "BypassRowLevelSecurity": ("BYPASSRLS", False),
}

CATALOG = Catalog(
    """
    SELECT r.rolname, r.rolcanlogin, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolinherit,
           r.rolreplication, r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil::text AS valid_until,
           ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                 WHERE m.member = r.oid ORDER BY 1) AS member_of
    FROM pg_roles r
    """,
    key=("rolname",),
    listed="rolname !~ '^pg_'",
)
_COMMENT = "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1"

SCHEMA = ResourceSchema(
    TYPE,
    identifier="Name",
    create_only=("Name",),
    json_schema=json_schema(
        "A role: a user who can log in, or a group other roles are members of.",
        {
            "Name": {**NAME, "description": "The role's name; changing it replaces the role."},
            "Password": {
                "type": "string",
                "writeOnly": True,
                "format": "password",
                "description": "A secret: sent to the server as a SCRAM-SHA-256 verifier, never read back.",
            },
            "Login": {"type": "boolean", "default": False},
            "Superuser": {"type": "boolean", "default": False},
            "CreateDatabase": {"type": "boolean", "default": False},
            "CreateRole": {"type": "boolean", "default": False},
            "Inherit": {"type": "boolean", "default": True},
            "Replication": {"type": "boolean", "default": False},
            "BypassRowLevelSecurity": {"type": "boolean", "default": False},
            "ConnectionLimit": {"type": "integer", "minimum": -1, "default": -1},
            "ValidUntil": {
                "type": ["string", "null"],
                "description": "A timestamp after which the password stops working; null for never.",
            },
            "Roles": {
                "type": "array",
                "items": NAME,
                "uniqueItems": True,
                "description": "The roles this role is a member of.",
            },
        },
        ["Name"],
    ),
)


class RoleKind(Kind):
    schema = SCHEMA
    catalog = CATALOG

    async def create(self, cx: Context, properties: JsonObject, token: str) -> str:
        name = text(properties, "Name")
        statement = f"CREATE ROLE {ident(name)} WITH {_options(properties)}"
        async with cx.to() as db, db.transaction():
            try:
                async with db.transaction():  # a savepoint: the duplicate must not abort the whole
                    await db.execute(statement)
            except asyncpg.DuplicateObjectError:
                if await made_by(db, _COMMENT, name, token):
                    return name
                raise
            if token:
                await db.execute(f"COMMENT ON ROLE {ident(name)} IS {literal(token_comment(token))}")
            await _set_memberships(db, name, [], names(properties, "Roles"))
        return name

    def locate(self, native_id: str) -> tuple[str | None, tuple[str, ...]]:
        return None, (native_id,)

    def describe(self, row: asyncpg.Record) -> Listed:
        valid_until = row["valid_until"]
        return row["rolname"], {
            "Name": row["rolname"],
            **{prop: row[column] for prop, column in _COLUMNS.items()},
            "ConnectionLimit": row["rolconnlimit"],
            "ValidUntil": None if valid_until in (None, "infinity") else valid_until,
            "Roles": list(row["member_of"]),
        }

    async def update(self, cx: Context, native_id: str, desired: JsonObject) -> None:
        async with cx.to() as db, db.transaction():
            current = await CATALOG.one(db, native_id)
            if current is None:
                raise asyncpg.UndefinedObjectError(f'role "{native_id}" does not exist')
            await db.execute(f"ALTER ROLE {ident(native_id)} WITH {_options(desired)}")
            await _set_memberships(db, native_id, list(current["member_of"]), names(desired, "Roles"))

    async def delete(self, cx: Context, native_id: str) -> bool:
        async with cx.to() as db:
            try:
                await db.execute(f"DROP ROLE {ident(native_id)}")
            except asyncpg.UndefinedObjectError:
                return False
        return True


def _options(properties: JsonObject) -> str:
    words = [kw if flag(properties, prop, default) else f"NO{kw}" for prop, (kw, default) in _FLAGS.items()]
    words.append(f"CONNECTION LIMIT {number(properties, 'ConnectionLimit', -1)}")
    valid_until = optional_text(properties, "ValidUntil")
    words.append(f"VALID UNTIL {literal(valid_until or 'infinity')}")
    password = optional_text(properties, "Password")
    if password is not None:
        words.append(f"PASSWORD {literal(scram_verifier(password))}")
    return " ".join(words)


async def _set_memberships(db: asyncpg.Connection, role: str, current: list[str], desired: list[str]) -> None:
    if role in desired:
        raise Invalid(f"role {role} cannot be a member of itself")
    for group in sorted(set(desired) - set(current)):
        await db.execute(f"GRANT {ident(group)} TO {ident(role)}")
    for group in sorted(set(current) - set(desired)):
        await db.execute(f"REVOKE {ident(group)} FROM {ident(role)}")
