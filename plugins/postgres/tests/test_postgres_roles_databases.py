"""Roles and databases on the real server, through formae.plugin.testing (calls cross the wire codec)."""

from __future__ import annotations

import base64

import asyncpg
import pytest
from formae_postgres.sql import scram_verifier
from postgres_plugin_support import Names, failed, ok

from formae.plugin import ErrorCode
from formae.plugin.testing import PluginHarness

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(30)]

ROLE = "PostgreSQL::Role"
DATABASE = "PostgreSQL::Database"


async def password_matches(admin: asyncpg.Connection, role: str, password: str) -> bool:
    """Whether the verifier the server stores was made from ``password`` (trust auth cannot tell)."""
    stored = await admin.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
    method, rest = stored.split("$", 1)
    iterations_salt, _ = rest.split("$", 1)
    iterations, salt = iterations_salt.split(":")
    expected = scram_verifier(password, base64.b64decode(salt), int(iterations))
    return bool(method == "SCRAM-SHA-256" and stored == expected)


async def test_role_lifecycle_with_password_membership_and_drift(
    pg: PluginHarness, names: Names, admin: asyncpg.Connection
) -> None:
    group, app = names("readers"), names("app")
    ok(await pg.create(ROLE, {"Name": group}))
    created = ok(
        await pg.create(
            ROLE,
            {"Name": app, "Login": True, "Password": "s3cret'pw", "ConnectionLimit": 5, "Roles": [group]},
        )
    )
    assert created.native_id == app
    assert created.properties is not None
    assert "Password" not in created.properties
    assert created.properties["Login"] is True
    assert created.properties["ConnectionLimit"] == 5
    assert created.properties["Roles"] == [group]
    assert await password_matches(admin, app, "s3cret'pw")

    await admin.execute(f'ALTER ROLE "{app}" CONNECTION LIMIT 9 NOLOGIN')  # out of band, as in psql
    drifted = ok(await pg.read(ROLE, app))
    assert drifted.properties is not None
    assert (drifted.properties["ConnectionLimit"], drifted.properties["Login"]) == (9, False)
    assert "Password" not in drifted.properties

    updated = ok(
        await pg.update(
            ROLE, app, drifted.properties, {"Name": app, "Login": True, "Password": {"$value": "new"}}
        )
    )
    assert updated.properties is not None
    assert (updated.properties["ConnectionLimit"], updated.properties["Roles"]) == (-1, [])
    assert await password_matches(admin, app, "new")

    ok(await pg.delete(ROLE, app))
    failed(await pg.read(ROLE, app), ErrorCode.NOT_FOUND)
    failed(await pg.delete(ROLE, app), ErrorCode.NOT_FOUND)


async def test_role_create_retried_with_its_token_finds_the_first(pg: PluginHarness, names: Names) -> None:
    role = names("retried")
    first = ok(await pg.create(ROLE, {"Name": role}, idempotency_key="key-1"))
    again = ok(await pg.create(ROLE, {"Name": role}, idempotency_key="key-1"))
    assert again.native_id == first.native_id
    failed(await pg.create(ROLE, {"Name": role}, idempotency_key="key-2"), ErrorCode.ALREADY_EXISTS)


async def test_role_name_cannot_change_in_place(pg: PluginHarness, names: Names) -> None:
    role = names("fixed")
    created = ok(await pg.create(ROLE, {"Name": role}))
    assert created.properties is not None
    message = failed(
        await pg.update(ROLE, role, created.properties, {"Name": names("other")}), ErrorCode.INVALID_REQUEST
    )
    assert "Name" in message


async def test_database_lifecycle(pg: PluginHarness, names: Names, admin: asyncpg.Connection) -> None:
    owner, database = names("owner"), names("db")
    ok(await pg.create(ROLE, {"Name": owner}))
    created = ok(
        await pg.create(
            DATABASE,
            {"Name": database, "Owner": owner, "Template": "template0", "Encoding": "UTF8", "LcCollate": "C"},
        )
    )
    assert created.properties is not None
    assert (created.properties["Owner"], created.properties["Encoding"]) == (owner, "UTF8")
    assert created.properties["LcCollate"] == "C"
    assert "Template" not in created.properties

    await admin.execute(f'ALTER DATABASE "{database}" CONNECTION LIMIT 3')
    drifted = ok(await pg.read(DATABASE, database))
    assert drifted.properties is not None
    assert drifted.properties["ConnectionLimit"] == 3

    updated = ok(
        await pg.update(DATABASE, database, drifted.properties, {"Name": database, "Owner": "postgres"})
    )
    assert updated.properties is not None
    assert (updated.properties["Owner"], updated.properties["ConnectionLimit"]) == ("postgres", -1)
    failed(
        await pg.update(DATABASE, database, updated.properties, {"Name": database, "Encoding": "SQL_ASCII"}),
        ErrorCode.INVALID_REQUEST,
    )
    listed = await pg.list(DATABASE)
    assert database in {resource.native_id for resource in listed.resources}

    ok(await pg.delete(DATABASE, database))
    failed(await pg.read(DATABASE, database), ErrorCode.NOT_FOUND)


async def test_failures_carry_codes(pg: PluginHarness, names: Names) -> None:
    failed(await pg.create(ROLE, {"Login": True}), ErrorCode.INVALID_REQUEST)  # no Name
    failed(await pg.create(ROLE, {"Name": names("x"), "Roles": ["no_such_role_zz"]}), ErrorCode.NOT_FOUND)
    failed(await pg.create("PostgreSQL::Nope", {}), ErrorCode.UNSUPPORTED_TYPE)
    unreachable = pg.target.__class__(
        "pg", "PostgreSQL", {"host": "127.0.0.1", "port": 1, "sslmode": "disable"}
    )
    failed(await pg.read(ROLE, "postgres", target=unreachable), ErrorCode.NETWORK_FAILURE)
    bad = pg.target.__class__("pg", "PostgreSQL", {"sslmode": "sometimes"})
    failed(await pg.read(ROLE, "postgres", target=bad), ErrorCode.INVALID_REQUEST)


def test_schemas_are_announced_with_json_schemas() -> None:
    from formae_postgres import PostgresPlugin

    schemas = {schema.type: schema for schema in PostgresPlugin().schemas()}
    assert set(schemas) == {
        "PostgreSQL::Database",
        "PostgreSQL::Role",
        "PostgreSQL::Schema",
        "PostgreSQL::Extension",
        "PostgreSQL::Grant",
        "PostgreSQL::DefaultPrivileges",
    }
    for schema in schemas.values():
        properties = schema.json_schema["properties"]
        assert schema.json_schema["additionalProperties"] is False
        assert set(schema.create_only) <= set(properties), schema.type
        assert set(schema.read_only) <= set(properties), schema.type
        assert set(schema.json_schema["required"]) <= set(properties), schema.type
    password = schemas[ROLE].json_schema["properties"]["Password"]
    assert (password["writeOnly"], password["format"]) == (True, "password")
