"""List (discovery) for every PostgreSQL type, on the real server: paged, complete, and read-consistent.

Each listing is walked a few objects a page. Whatever it finds under this test's names must be
exactly what the test made, each object once, and a read of each listed native id must report
the very properties the listing did (so discovery finds managed objects by their native ids).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from postgres_plugin_support import Names, failed, ok, server_config

from formae.plugin import ErrorCode, ListRequest, ProgressResult
from formae.plugin.testing import PluginHarness

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

DB = str(server_config()["database"])
ROLE, SCHEMA = "PostgreSQL::Role", "PostgreSQL::Schema"
GRANT, DEFAULTS = "PostgreSQL::Grant", "PostgreSQL::DefaultPrivileges"


async def listed(pg: PluginHarness, type: str, prefix: str, page_size: int = 3) -> dict[str, Any]:
    """Every listed object of ``type`` whose native id mentions ``prefix``: native id → properties."""
    found: dict[str, Any] = {}
    token, pages = "", 0
    while True:
        page = await pg.list(type, page_token=token, page_size=page_size)
        pages += 1
        assert len(page.resources) <= page_size
        for resource in page.resources:
            if prefix in resource.native_id:
                assert resource.native_id not in found, f"{resource.native_id} listed twice"
                found[resource.native_id] = resource.properties
        token = page.next_page_token
        if not token:
            return found
        assert pages < 10_000, "the listing never ends"


async def reads_back_the_same(pg: PluginHarness, type: str, found: dict[str, Any]) -> None:
    for native_id, properties in found.items():
        assert ok(await pg.read(type, native_id)).properties == properties, native_id


async def make_grants(pg: PluginHarness, names: Names, admin: asyncpg.Connection) -> dict[str, str]:
    owner, reader, writer, schema = names("owner"), names("reader"), names("writer"), names("s")
    for role in (owner, reader, writer):
        ok(await pg.create(ROLE, {"Name": role}))
    ok(await pg.create(SCHEMA, {"Database": DB, "Name": schema, "Owner": owner}))
    await admin.execute(
        f'SET ROLE "{owner}"; CREATE TABLE "{schema}".t1 (x int); CREATE TABLE "{schema}".t2 (x int);'
        f' CREATE SEQUENCE "{schema}".counter; RESET ROLE'
    )
    grant = {"Database": DB, "Schema": schema}
    every_table = {**grant, "Role": reader, "ObjectType": "table", "Privileges": ["SELECT"]}
    ok(await pg.create(GRANT, every_table))
    ok(await pg.create(GRANT, {**grant, "Role": reader, "ObjectType": "schema", "Privileges": ["USAGE"]}))
    ok(
        await pg.create(
            GRANT, {"Database": DB, "Role": reader, "ObjectType": "database", "Privileges": ["CONNECT"]}
        )
    )
    await admin.execute(
        f'GRANT INSERT ON "{schema}".t1 TO "{writer}"; GRANT SELECT, UPDATE ON "{schema}".t2 TO "{writer}"'
    )  # out of band, and not the same on both tables
    return {"owner": owner, "reader": reader, "writer": writer, "schema": schema}


async def test_grants_are_listed_a_page_at_a_time_and_read_back_alike(
    pg: PluginHarness, names: Names, admin: asyncpg.Connection
) -> None:
    made = await make_grants(pg, names, admin)
    reader, writer, schema = made["reader"], made["writer"], made["schema"]

    found = await listed(pg, GRANT, names.prefix)

    summary = {(p["Role"], p["ObjectType"], tuple(p["Objects"])): p["Privileges"] for p in found.values()}
    assert summary == {
        (reader, "database", ()): ["CONNECT"],
        (reader, "schema", ()): ["USAGE"],
        (reader, "table", ()): ["SELECT"],  # the same on every table: one grant of them all
        (writer, "table", ("t1",)): ["INSERT"],  # not the same: one grant per table
        (writer, "table", ("t2",)): ["SELECT", "UPDATE"],
    }, "the owner's own privileges are not listed"
    assert f"{DB}/{reader}/table/{schema}/" in found, "the grant applied is found by its native id"
    await reads_back_the_same(pg, GRANT, found)


async def test_default_privileges_are_listed_and_read_back_alike(
    pg: PluginHarness, names: Names, admin: asyncpg.Connection
) -> None:
    owner, reader, schema = names("owner"), names("reader"), names("s")
    for role in (owner, reader):
        ok(await pg.create(ROLE, {"Name": role}))
    ok(await pg.create(SCHEMA, {"Database": DB, "Name": schema, "Owner": owner}))
    entry = {"Database": DB, "Owner": owner, "Role": reader, "Privileges": ["SELECT"]}
    in_schema = ok(await pg.create(DEFAULTS, {**entry, "Schema": schema, "ObjectType": "table"}))
    everywhere = ok(await pg.create(DEFAULTS, {**entry, "ObjectType": "sequence", "Privileges": ["USAGE"]}))
    await admin.execute(
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{owner}" GRANT EXECUTE ON FUNCTIONS TO "{reader}"'
    )

    found = await listed(pg, DEFAULTS, names.prefix, page_size=1)

    assert in_schema.native_id in found
    assert everywhere.native_id in found
    assert {(p.get("Schema"), p["ObjectType"], tuple(p["Privileges"])) for p in found.values()} == {
        (schema, "table", ("SELECT",)),
        (None, "sequence", ("USAGE",)),
        (None, "function", ("EXECUTE",)),
    }, "what the owner holds on its own future objects is not listed"
    await reads_back_the_same(pg, DEFAULTS, found)


async def test_roles_and_schemas_are_paged_without_loss_or_repetition(
    pg: PluginHarness, names: Names
) -> None:
    for index in range(5):
        ok(await pg.create(ROLE, {"Name": names(f"r{index}")}))
        ok(await pg.create(SCHEMA, {"Database": DB, "Name": names(f"s{index}")}))

    roles = await listed(pg, ROLE, names.prefix, page_size=2)
    schemas = await listed(pg, SCHEMA, names.prefix, page_size=2)

    assert sorted(roles) == [names(f"r{index}") for index in range(5)]
    assert sorted(schemas) == [f"{DB}/{names(f's{index}')}" for index in range(5)]
    await reads_back_the_same(pg, ROLE, roles)
    await reads_back_the_same(pg, SCHEMA, schemas)


async def test_a_page_token_it_never_gave_is_refused(pg: PluginHarness) -> None:
    answer = await pg.call(ListRequest(GRANT, pg.target, "not-a-token", 10))
    assert isinstance(answer, ProgressResult)
    assert "page token" in failed(answer, ErrorCode.INVALID_REQUEST)
