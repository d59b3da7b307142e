"""Schemas, extensions, grants and default privileges inside a database, on the real server.

They run in the test database itself (``names`` gives each test its own schema and role names), so
no test pays for creating a database.
"""

from __future__ import annotations

import asyncpg
import pytest
from postgres_plugin_support import Names, failed, ok, server_config

from formae.plugin import ErrorCode
from formae.plugin.testing import PluginHarness

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(30)]

ROLE = "PostgreSQL::Role"
SCHEMA = "PostgreSQL::Schema"
EXTENSION = "PostgreSQL::Extension"
GRANT = "PostgreSQL::Grant"
DEFAULTS = "PostgreSQL::DefaultPrivileges"
DB = str(server_config()["database"])


async def test_schema_lifecycle(pg: PluginHarness, names: Names, admin: asyncpg.Connection) -> None:
    owner, schema = names("owner"), names("s")
    ok(await pg.create(ROLE, {"Name": owner}))
    created = ok(await pg.create(SCHEMA, {"Database": DB, "Name": schema, "Owner": owner}))
    assert created.native_id == f"{DB}/{schema}"
    assert created.properties == {"Database": DB, "Name": schema, "Owner": owner, "Id": created.native_id}

    await admin.execute(f'ALTER SCHEMA "{schema}" OWNER TO postgres')
    drifted = ok(await pg.read(SCHEMA, created.native_id))
    assert drifted.properties is not None
    assert drifted.properties["Owner"] == "postgres"
    updated = ok(
        await pg.update(
            SCHEMA, created.native_id, drifted.properties, {"Database": DB, "Name": schema, "Owner": owner}
        )
    )
    assert updated.properties is not None
    assert updated.properties["Owner"] == owner
    assert created.native_id in {r.native_id for r in (await pg.list(SCHEMA)).resources}

    ok(await pg.delete(SCHEMA, created.native_id))
    failed(await pg.read(SCHEMA, created.native_id), ErrorCode.NOT_FOUND)


async def test_extension_moves_schema_in_place(
    pg: PluginHarness, names: Names, admin: asyncpg.Connection
) -> None:
    first, second = names("ext_a"), names("ext_b")
    for schema in (first, second):
        ok(await pg.create(SCHEMA, {"Database": DB, "Name": schema}))
    await admin.execute(
        "DROP EXTENSION IF EXISTS tsm_system_rows"
    )  # a leftover would make this AlreadyExists
    try:
        created = ok(await pg.create(EXTENSION, {"Database": DB, "Name": "tsm_system_rows", "Schema": first}))
        assert created.properties is not None
        assert created.properties["Schema"] == first
        assert created.properties["Version"]
        moved = ok(
            await pg.update(
                EXTENSION,
                created.native_id,
                created.properties,
                {"Database": DB, "Name": "tsm_system_rows", "Schema": second},
            )
        )
        assert moved.properties is not None
        assert moved.properties["Schema"] == second
        ok(await pg.delete(EXTENSION, created.native_id))
        failed(await pg.read(EXTENSION, created.native_id), ErrorCode.NOT_FOUND)
    finally:
        await admin.execute("DROP EXTENSION IF EXISTS tsm_system_rows")


async def test_table_grant_owns_the_roles_privileges(
    pg: PluginHarness, names: Names, admin: asyncpg.Connection
) -> None:
    role, schema = names("reader"), names("data")
    ok(await pg.create(ROLE, {"Name": role}))
    ok(await pg.create(SCHEMA, {"Database": DB, "Name": schema}))
    await admin.execute(f'CREATE TABLE "{schema}".a (x int); CREATE TABLE "{schema}".b (x int)')
    wanted = {"Database": DB, "Role": role, "Schema": schema, "ObjectType": "table", "Privileges": ["SELECT"]}
    created = ok(await pg.create(GRANT, wanted))
    assert created.properties is not None
    assert (created.properties["Privileges"], created.properties["WithGrantOption"]) == (["SELECT"], False)

    await admin.execute(f'REVOKE SELECT ON "{schema}".b FROM "{role}"')  # out of band, on one table
    drifted = ok(await pg.read(GRANT, created.native_id))
    assert drifted.properties is not None
    assert drifted.properties["Privileges"] == []  # SELECT is no longer held on every table
    await admin.execute(f'GRANT SELECT, INSERT ON "{schema}".b TO "{role}"')
    still = ok(await pg.read(GRANT, created.native_id))
    assert still.properties is not None
    assert still.properties["Privileges"] == ["SELECT"]  # INSERT is held on b only

    updated = ok(
        await pg.update(
            GRANT, created.native_id, still.properties, {**wanted, "Privileges": ["select", "insert"]}
        )
    )
    assert updated.properties is not None
    assert updated.properties["Privileges"] == ["INSERT", "SELECT"]

    ok(await pg.delete(GRANT, created.native_id))
    failed(await pg.read(GRANT, created.native_id), ErrorCode.NOT_FOUND)
    held = await admin.fetchval(f"SELECT has_table_privilege('{role}', '\"{schema}\".a', 'SELECT')")
    assert held is False


async def test_database_and_schema_grants(pg: PluginHarness, names: Names) -> None:
    role, schema = names("user"), names("app")
    ok(await pg.create(ROLE, {"Name": role}))
    ok(await pg.create(SCHEMA, {"Database": DB, "Name": schema}))
    on_db = ok(
        await pg.create(
            GRANT, {"Database": DB, "Role": role, "ObjectType": "database", "Privileges": ["ALL"]}
        )
    )
    assert on_db.properties is not None
    assert on_db.properties["Privileges"] == ["CONNECT", "CREATE", "TEMPORARY"]
    on_schema = ok(
        await pg.create(
            GRANT,
            {
                "Database": DB,
                "Role": role,
                "Schema": schema,
                "ObjectType": "schema",
                "Privileges": ["USAGE"],
                "WithGrantOption": True,
            },
        )
    )
    assert on_schema.properties is not None
    assert on_schema.properties["WithGrantOption"] is True
    failed(
        await pg.create(
            GRANT,
            {
                "Database": DB,
                "Role": role,
                "Schema": schema,
                "ObjectType": "schema",
                "Privileges": ["SELECT"],
            },
        ),
        ErrorCode.INVALID_REQUEST,
    )
    for grant in (on_db, on_schema):
        ok(await pg.delete(GRANT, grant.native_id))


async def test_default_privileges(pg: PluginHarness, names: Names, admin: asyncpg.Connection) -> None:
    owner, reader, schema = names("owner"), names("reader"), names("s")
    ok(await pg.create(ROLE, {"Name": owner}))
    ok(await pg.create(ROLE, {"Name": reader}))
    ok(await pg.create(SCHEMA, {"Database": DB, "Name": schema, "Owner": owner}))
    wanted = {
        "Database": DB,
        "Owner": owner,
        "Role": reader,
        "Schema": schema,
        "ObjectType": "table",
        "Privileges": ["SELECT"],
    }
    created = ok(await pg.create(DEFAULTS, wanted))
    assert created.properties is not None
    assert created.properties["Privileges"] == ["SELECT"]

    await admin.execute(f'SET ROLE "{owner}"; CREATE TABLE "{schema}".later (x int); RESET ROLE')
    held = await admin.fetchval(f"SELECT has_table_privilege('{reader}', '\"{schema}\".later', 'SELECT')")
    assert held is True

    scope = f'FOR ROLE "{owner}" IN SCHEMA "{schema}"'
    await admin.execute(f'ALTER DEFAULT PRIVILEGES {scope} GRANT UPDATE ON TABLES TO "{reader}"')
    drifted = ok(await pg.read(DEFAULTS, created.native_id))
    assert drifted.properties is not None
    assert drifted.properties["Privileges"] == ["SELECT", "UPDATE"]
    ok(await pg.update(DEFAULTS, created.native_id, drifted.properties, wanted))
    ok(await pg.delete(DEFAULTS, created.native_id))
    failed(await pg.read(DEFAULTS, created.native_id), ErrorCode.NOT_FOUND)
