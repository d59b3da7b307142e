"""PostgreSQL::Grant: the privileges one role holds on a database, a schema, or objects in a schema.

As in Terraform's provider, a grant owns the role's privileges on its objects: create and update
revoke everything and grant exactly the listed privileges, in one transaction; delete revokes
everything. Without ``Objects``, a table, sequence or function grant covers every such object in
the schema that exists when it runs. Read reports the privileges the role holds on *every* object
covered, so a ``REVOKE`` in psql on any one of them shows as drift; a grant whose role holds
nothing on any of them any more reads as gone.

Listed (discovery), a role's privileges on tables, sequences or functions are one grant of every
object of the type in the schema (no ``Objects``) when the role holds the same privileges on each
of them, as such a grant leaves them; otherwise one grant per object. What an owner holds on its own
objects is implied, not granted, and is not listed; nor is anything in PostgreSQL's own schemas.

Native id: ``database/role/object type/schema/object,object`` (each part percent-encoded).
"""

from __future__ import annotations

from urllib.parse import quote, unquote

import asyncpg

from formae.plugin import JsonObject, ResourceSchema
from formae_postgres.catalog import Catalog
from formae_postgres.kinds.base import NAME, Context, Kind, Listed, json_schema
from formae_postgres.sql import Invalid, flag, ident, join_id, names, qualified, split_id, text

TYPE = "PostgreSQL::Grant"

PRIVILEGES = {
    "database": ("CONNECT", "CREATE", "TEMPORARY"),
    "schema": ("CREATE", "USAGE"),
    "table": ("DELETE", "INSERT", "REFERENCES", "SELECT", "TRIGGER", "TRUNCATE", "UPDATE"),
    "sequence": ("SELECT", "UPDATE", "USAGE"),
    "function": ("EXECUTE",),
}
_IN_SCHEMA = {"table": "TABLES", "sequence": "SEQUENCES", "function": "FUNCTIONS"}
_KEYWORD = {"table": "TABLE", "sequence": "SEQUENCE", "function": "FUNCTION"}
_HELD_BY_ROLE = (
    "LEFT JOIN LATERAL (SELECT x.privilege_type, x.is_grantable FROM aclexplode({acl}) x"
    " JOIN pg_roles r ON r.oid = x.grantee WHERE r.rolname = $2) a ON true"
)
_IN_NAMESPACE = " JOIN pg_namespace n ON n.oid = {column} "
_COVERED = {  # (object, privilege_type, is_grantable) rows: every object the grant covers, held or not
    "database": "SELECT d.datname, a.privilege_type, a.is_grantable FROM pg_database d "
    + _HELD_BY_ROLE.format(acl="d.datacl")
    + " WHERE d.datname = $1",
    "schema": "SELECT n.nspname, a.privilege_type, a.is_grantable FROM pg_namespace n "
    + _HELD_BY_ROLE.format(acl="n.nspacl")
    + " WHERE n.nspname = $1",
    "table": "SELECT c.relname, a.privilege_type, a.is_grantable FROM pg_class c"
    + _IN_NAMESPACE.format(column="c.relnamespace")
    + _HELD_BY_ROLE.format(acl="c.relacl")
    + " WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'f', 'p')",
    "sequence": "SELECT c.relname, a.privilege_type, a.is_grantable FROM pg_class c"
    + _IN_NAMESPACE.format(column="c.relnamespace")
    + _HELD_BY_ROLE.format(acl="c.relacl")
    + " WHERE n.nspname = $1 AND c.relkind = 'S'",
    "function": "SELECT p.proname, a.privilege_type, a.is_grantable FROM pg_proc p"
    + _IN_NAMESPACE.format(column="p.pronamespace")
    + _HELD_BY_ROLE.format(acl="p.proacl")
    + " WHERE n.nspname = $1 AND p.prokind = 'f'",
}

CATALOG = Catalog(
    """
    WITH objects AS (
        SELECT d.datname::text AS database, 'database' AS object_type, '' AS schema, '' AS object,
               d.datacl AS acl, d.datdba AS owner
        FROM pg_database d WHERE d.datallowconn AND NOT d.datistemplate
        UNION ALL
        SELECT current_database()::text, 'schema', n.nspname::text, '', n.nspacl, n.nspowner
        FROM pg_namespace n
        UNION ALL
        SELECT current_database()::text, CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END,
               n.nspname::text, c.relname::text, c.relacl, c.relowner
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p', 'S')
        UNION ALL
        SELECT current_database()::text, 'function', n.nspname::text, p.proname::text, p.proacl, p.proowner
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind = 'f'
    ),
    held AS (  -- what each role was granted on each object
        SELECT o.database, g.rolname::text AS role, o.object_type, o.schema, o.object,
               array_agg(DISTINCT a.privilege_type::text ORDER BY a.privilege_type::text) AS privileges,
               bool_and(a.is_grantable) AS grantable
        FROM objects o CROSS JOIN LATERAL aclexplode(o.acl) a JOIN pg_roles g ON g.oid = a.grantee
        WHERE a.grantee <> o.owner
        GROUP BY 1, 2, 3, 4, 5
    ),
    uniform AS (  -- the same privileges on every object of the type in the schema
        SELECT h.database, h.role, h.object_type, h.schema, '' AS object,
               min(h.privileges) AS privileges, bool_and(h.grantable) AS grantable
        FROM held h WHERE h.object <> ''
        GROUP BY 1, 2, 3, 4
        HAVING count(DISTINCT h.privileges) = 1 AND count(DISTINCT h.object) = (
            SELECT count(DISTINCT o.object) FROM objects o
            WHERE (o.database, o.object_type, o.schema) = (h.database, h.object_type, h.schema))
    )
    SELECT * FROM uniform
    UNION ALL
    SELECT * FROM held h WHERE h.object = '' OR NOT EXISTS (
        SELECT 1 FROM uniform u
        WHERE (u.database, u.role, u.object_type, u.schema) = (h.database, h.role, h.object_type, h.schema))
    """,
    key=("database", "role", "object_type", "schema", "object"),
    listed="schema !~ '^pg_' AND schema <> 'information_schema'",
)
"""Every grant there is, one row each, as the module's docstring says discovery lists them."""

ALL_PRIVILEGES = sorted({p for privileges in PRIVILEGES.values() for p in privileges} | {"ALL"})

SCHEMA = ResourceSchema(
    TYPE,
    identifier="Id",
    create_only=("Database", "Role", "Schema", "ObjectType", "Objects"),
    read_only=("Id",),
    json_schema=json_schema(
        "Exactly these privileges for a role on a database, a schema, or objects in a schema.",
        {
            "Database": NAME,
            "Role": {**NAME, "description": "The role given the privileges (PUBLIC is not supported)."},
            "Schema": {**NAME, "description": "Required unless ObjectType is database."},
            "ObjectType": {"enum": list(PRIVILEGES)},
            "Objects": {
                "type": "array",
                "items": NAME,
                "uniqueItems": True,
                "description": "Names in the schema; empty or absent means every object of the type.",
            },
            "Privileges": {
                "type": "array",
                "items": {"enum": ALL_PRIVILEGES},
                "uniqueItems": True,
                "description": "ALL means every privilege of the object type; read reports them one by one.",
            },
            "WithGrantOption": {"type": "boolean", "default": False},
            "Id": {"type": "string", "readOnly": True},
        },
        ["Database", "Role", "ObjectType", "Privileges"],
    ),
)


class _Target:
    """What a grant covers, from its properties or from its native id."""

    def __init__(self, database: str, role: str, object_type: str, schema: str, objects: list[str]) -> None:
        if object_type not in PRIVILEGES:
            raise Invalid(f"ObjectType must be one of {', '.join(PRIVILEGES)}, not {object_type!r}")
        if object_type != "database" and not schema:
            raise Invalid(f"a {object_type} grant needs a Schema")
        if object_type in ("database", "schema") and objects:
            raise Invalid(f"a {object_type} grant takes no Objects")
        self.database, self.role, self.object_type = database, role, object_type
        self.schema, self.objects = schema, objects

    @classmethod
    def of(cls, properties: JsonObject) -> _Target:
        object_type = text(properties, "ObjectType")
        schema = text(properties, "Schema", "") if object_type != "database" else ""
        return cls(
            text(properties, "Database"),
            text(properties, "Role"),
            object_type,
            schema,
            names(properties, "Objects"),
        )

    @classmethod
    def parse(cls, native_id: str) -> _Target:
        database, role, object_type, schema, objects = split_id(native_id, 5)
        return cls(database, role, object_type, schema, [unquote(o) for o in objects.split(",") if o])

    @property
    def native_id(self) -> str:
        objects = ",".join(quote(o, safe="") for o in self.objects)
        return join_id(self.database, self.role, self.object_type, self.schema, objects)

    def on(self) -> str:
        """The ``ON …`` clause of GRANT and REVOKE."""
        if self.object_type == "database":
            return f"DATABASE {ident(self.database)}"
        if self.object_type == "schema":
            return f"SCHEMA {ident(self.schema)}"
        if not self.objects:
            return f"ALL {_IN_SCHEMA[self.object_type]} IN SCHEMA {ident(self.schema)}"
        listed = ", ".join(qualified(self.schema, o) for o in self.objects)
        return f"{_KEYWORD[self.object_type]} {listed}"


def privileges_of(object_type: str, properties: JsonObject) -> list[str]:
    """The listed privileges, ``ALL`` spelled out, each checked against the object type."""
    wanted = [p.upper() for p in names(properties, "Privileges")]
    allowed = PRIVILEGES[object_type]
    if "ALL" in wanted:
        return list(allowed)
    wrong = [p for p in wanted if p not in allowed]
    if wrong:
        raise Invalid(
            f"{', '.join(wrong)} cannot be granted on a {object_type}; allowed: {', '.join(allowed)}"
        )
    if not wanted:
        raise Invalid("Privileges must list at least one privilege")
    return sorted(set(wanted))


class GrantKind(Kind):
    schema = SCHEMA
    catalog = CATALOG

    async def create(self, cx: Context, properties: JsonObject, token: str) -> str:
        target = _Target.of(properties)
        await _grant(cx, target, properties)
        return target.native_id

    def locate(self, native_id: str) -> tuple[str | None, tuple[str, ...]]:
        target = _Target.parse(native_id)
        key = (target.database, target.role, target.object_type, target.schema, ",".join(target.objects))
        return target.database, key

    def describe(self, row: asyncpg.Record) -> Listed:
        objects = [row["object"]] if row["object"] else []
        target = _Target(row["database"], row["role"], row["object_type"], row["schema"], objects)
        return target.native_id, _properties(target, list(row["privileges"]), row["grantable"])

    async def read(self, cx: Context, native_id: str) -> JsonObject | None:
        """What the role holds on *every* object the grant covers (the catalog lists them one by one)."""
        target = _Target.parse(native_id)
        async with cx.to(target.database) as db:
            if await db.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", target.role) is None:
                return None
            held = await _held(db, target)
        if held is None:
            return None
        return _properties(target, *held)

    async def update(self, cx: Context, native_id: str, desired: JsonObject) -> None:
        await _grant(cx, _Target.parse(native_id), desired)

    async def delete(self, cx: Context, native_id: str) -> bool:
        target = _Target.parse(native_id)
        async with cx.to(target.database) as db:
            try:
                await db.execute(f"REVOKE ALL ON {target.on()} FROM {ident(target.role)}")
            except (
                asyncpg.UndefinedObjectError,
                asyncpg.InvalidSchemaNameError,
                asyncpg.UndefinedTableError,
            ):
                return False
        return True


def _properties(target: _Target, privileges: list[str], grantable: bool) -> JsonObject:
    return {
        "Database": target.database,
        "Role": target.role,
        **({"Schema": target.schema} if target.object_type != "database" else {}),
        "ObjectType": target.object_type,
        "Objects": target.objects,
        "Privileges": privileges,
        "WithGrantOption": grantable,
        "Id": target.native_id,
    }


async def _grant(cx: Context, target: _Target, properties: JsonObject) -> None:
    privileges = privileges_of(target.object_type, properties)
    option = " WITH GRANT OPTION" if flag(properties, "WithGrantOption", False) else ""
    async with cx.to(target.database) as db, db.transaction():
        await db.execute(f"REVOKE ALL ON {target.on()} FROM {ident(target.role)}")
        await db.execute(f"GRANT {', '.join(privileges)} ON {target.on()} TO {ident(target.role)}{option}")


async def _held(db: asyncpg.Connection, target: _Target) -> tuple[list[str], bool] | None:
    """The privileges the role holds on every object covered, and whether all are grantable.

    None when the database or schema the grant is on is gone, or the role holds nothing on any object.
    """
    schema_gone = target.object_type != "database" and not await db.fetchval(
        "SELECT 1 FROM pg_namespace WHERE nspname = $1", target.schema
    )
    if schema_gone:
        return None
    scope = target.database if target.object_type == "database" else target.schema
    rows = await db.fetch(_COVERED[target.object_type], scope, target.role)
    if target.object_type == "database" and not rows:
        return None
    held: dict[str, set[str]] = {}
    grantable = True
    for name, privilege, is_grantable in rows:
        if target.objects and name not in target.objects:
            continue
        held.setdefault(name, set())
        if privilege is not None:
            held[name].add(privilege)
            grantable = grantable and bool(is_grantable)
    if not any(held.values()):
        return None
    return sorted(set.intersection(*held.values())), grantable
