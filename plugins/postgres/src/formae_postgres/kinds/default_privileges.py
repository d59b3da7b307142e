"""PostgreSQL::DefaultPrivileges: what a role is granted on objects another role creates later.

``ALTER DEFAULT PRIVILEGES FOR ROLE owner [IN SCHEMA s] GRANT … ON TABLES TO role``. Like a grant,
it owns the role's default privileges for that owner, schema and object type: create and update
revoke everything then grant the list; delete revokes everything; an entry the role no longer
holds anything in reads as gone.

Native id: ``database/owner/role/schema/object type`` (schema empty for every schema).
"""

from __future__ import annotations

import asyncpg

from formae.plugin import JsonObject, ResourceSchema
from formae_postgres.catalog import Catalog
from formae_postgres.kinds.base import NAME, Context, Kind, Listed, json_schema
from formae_postgres.sql import Invalid, flag, ident, join_id, names, split_id, text

TYPE = "PostgreSQL::DefaultPrivileges"

PRIVILEGES = {
    "table": ("DELETE", "INSERT", "REFERENCES", "SELECT", "TRIGGER", "TRUNCATE", "UPDATE"),
    "sequence": ("SELECT", "UPDATE", "USAGE"),
    "function": ("EXECUTE",),
    "type": ("USAGE",),
    "schema": ("CREATE", "USAGE"),
}
_PLURAL = {
    "table": "TABLES",
    "sequence": "SEQUENCES",
    "function": "FUNCTIONS",
    "type": "TYPES",
    "schema": "SCHEMAS",
}
_CATALOG_CODE = {"table": "r", "sequence": "S", "function": "f", "type": "T", "schema": "n"}

_OBJECT_TYPE = {code: object_type for object_type, code in _CATALOG_CODE.items()}

CATALOG = Catalog(
    """
    SELECT current_database() AS database, pg_get_userbyid(d.defaclrole) AS owner, g.rolname AS role,
           coalesce(n.nspname, '') AS schema, d.defaclobjtype::text AS code,
           array_agg(DISTINCT a.privilege_type ORDER BY a.privilege_type) AS privileges,
           bool_and(a.is_grantable) AS grantable
    FROM pg_default_acl d
    LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
    CROSS JOIN LATERAL aclexplode(d.defaclacl) a
    JOIN pg_roles g ON g.oid = a.grantee
    GROUP BY d.defaclrole, g.rolname, n.nspname, d.defaclobjtype
    """,
    key=("owner", "role", "schema", "code"),
    listed="role <> owner",  # what an owner holds on its own objects is implied, not granted
)
"""One row per (owner, schema, object type, role) the role is granted anything in."""

SCHEMA = ResourceSchema(
    TYPE,
    identifier="Id",
    create_only=("Database", "Owner", "Role", "Schema", "ObjectType"),
    read_only=("Id",),
    json_schema=json_schema(
        "Privileges a role gets on the objects another role creates from now on.",
        {
            "Database": NAME,
            "Owner": {**NAME, "description": "The role whose future objects these privileges apply to."},
            "Role": {**NAME, "description": "The role given the privileges."},
            "Schema": {**NAME, "description": "Only objects created in this schema (default: any schema)."},
            "ObjectType": {"enum": list(PRIVILEGES)},
            "Privileges": {
                "type": "array",
                "items": {"enum": sorted({p for ps in PRIVILEGES.values() for p in ps} | {"ALL"})},
                "uniqueItems": True,
            },
            "WithGrantOption": {"type": "boolean", "default": False},
            "Id": {"type": "string", "readOnly": True},
        },
        ["Database", "Owner", "Role", "ObjectType", "Privileges"],
    ),
)


class _Entry:
    def __init__(self, database: str, owner: str, role: str, schema: str, object_type: str) -> None:
        if object_type not in PRIVILEGES:
            raise Invalid(f"ObjectType must be one of {', '.join(PRIVILEGES)}, not {object_type!r}")
        if object_type == "schema" and schema:
            raise Invalid("default privileges on schemas cannot be limited to a Schema")
        self.database, self.owner, self.role, self.schema, self.object_type = (
            database,
            owner,
            role,
            schema,
            object_type,
        )

    @classmethod
    def of(cls, properties: JsonObject) -> _Entry:
        return cls(
            text(properties, "Database"),
            text(properties, "Owner"),
            text(properties, "Role"),
            text(properties, "Schema", ""),
            text(properties, "ObjectType"),
        )

    @classmethod
    def parse(cls, native_id: str) -> _Entry:
        return cls(*split_id(native_id, 5))

    @property
    def native_id(self) -> str:
        return join_id(self.database, self.owner, self.role, self.schema, self.object_type)

    def statement(self, action: str) -> str:
        """``ALTER DEFAULT PRIVILEGES FOR ROLE owner [IN SCHEMA s] {action}``, action naming the objects."""
        scope = f" IN SCHEMA {ident(self.schema)}" if self.schema else ""
        return f"ALTER DEFAULT PRIVILEGES FOR ROLE {ident(self.owner)}{scope} {action}"


class DefaultPrivilegesKind(Kind):
    schema = SCHEMA
    catalog = CATALOG

    async def create(self, cx: Context, properties: JsonObject, token: str) -> str:
        entry = _Entry.of(properties)
        await _set(cx, entry, properties)
        return entry.native_id

    def locate(self, native_id: str) -> tuple[str | None, tuple[str, ...]]:
        entry = _Entry.parse(native_id)
        return entry.database, (entry.owner, entry.role, entry.schema, _CATALOG_CODE[entry.object_type])

    def describe(self, row: asyncpg.Record) -> Listed:
        entry = _Entry(row["database"], row["owner"], row["role"], row["schema"], _OBJECT_TYPE[row["code"]])
        return entry.native_id, {
            "Database": entry.database,
            "Owner": entry.owner,
            "Role": entry.role,
            **({"Schema": entry.schema} if entry.schema else {}),
            "ObjectType": entry.object_type,
            "Privileges": list(row["privileges"]),
            "WithGrantOption": row["grantable"],
            "Id": entry.native_id,
        }

    async def update(self, cx: Context, native_id: str, desired: JsonObject) -> None:
        await _set(cx, _Entry.parse(native_id), desired)

    async def delete(self, cx: Context, native_id: str) -> bool:
        entry = _Entry.parse(native_id)
        async with cx.to(entry.database) as db:
            if (
                await db.fetchval(
                    "SELECT count(*) FROM pg_roles WHERE rolname IN ($1, $2)", entry.owner, entry.role
                )
                < 2
            ):
                return False
            await db.execute(
                entry.statement(f"REVOKE ALL ON {_PLURAL[entry.object_type]} FROM {ident(entry.role)}")
            )
        return True


async def _set(cx: Context, entry: _Entry, properties: JsonObject) -> None:
    privileges = _privileges(entry.object_type, properties)
    objects = _PLURAL[entry.object_type]
    option = " WITH GRANT OPTION" if flag(properties, "WithGrantOption", False) else ""
    async with cx.to(entry.database) as db, db.transaction():
        await db.execute(entry.statement(f"REVOKE ALL ON {objects} FROM {ident(entry.role)}"))
        await db.execute(
            entry.statement(f"GRANT {', '.join(privileges)} ON {objects} TO {ident(entry.role)}{option}")
        )


def _privileges(object_type: str, properties: JsonObject) -> list[str]:
    wanted = [p.upper() for p in names(properties, "Privileges")]
    allowed = PRIVILEGES[object_type]
    if "ALL" in wanted:
        return list(allowed)
    wrong = [p for p in wanted if p not in allowed]
    if wrong or not wanted:
        raise Invalid(f"Privileges on {object_type} must be some of {', '.join(allowed)}, not {wanted}")
    return sorted(set(wanted))
