from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from formae.store import Datastore, StoreError, open_store
from formae.store._dialect import POSTGRES, SQLITE, Tx
from formae.store.migrate import load_migrations
from tests.unit.store.store_factories import a_command


async def _applied(store: Datastore) -> list[Any]:
    async def query(tx: Tx) -> list[Any]:
        return [row["version"] for row in await tx.fetch("SELECT version FROM schema_migrations")]

    return await store._read("reading schema_migrations", query)


async def test_opening_twice_migrates_once_and_keeps_the_data(store_url: str) -> None:
    command = a_command()
    async with await open_store(store_url) as first:
        await first.create_command(command)

    async with await open_store(store_url) as second:
        assert await second.get_command(command.id) == command
        assert sorted(await _applied(second)) == [m.version for m in load_migrations(SQLITE)]


async def test_concurrent_openers_do_not_race(store_url: str) -> None:
    stores = await asyncio.gather(*(open_store(store_url) for _ in range(4)))
    try:
        assert sorted(await _applied(stores[0])) == [m.version for m in load_migrations(SQLITE)]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_a_database_from_a_newer_formae_is_refused(store: Datastore, store_url: str) -> None:
    await store._committer.submit(
        lambda tx: tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', $1)",
            store._dialect.encode_time(a_command().created_at),
        )
    )

    with pytest.raises(StoreError, match=r"\[9999\].*newer version of formae"):
        await open_store(store_url)


def _tables(sql: str) -> dict[str, list[str]]:
    """Table name → column names (created or added), from the simple DDL our migrations use."""
    tables: dict[str, list[str]] = {}
    for name, body in re.findall(r"CREATE TABLE (\w+) \((.*?)\n\);", sql, re.S):
        lines = [line.strip() for line in body.splitlines()]
        tables[name] = [line.split()[0] for line in lines if line and not line.startswith(("--", "PRIMARY"))]
    for name, column in re.findall(r"ALTER TABLE (\w+) ADD COLUMN (\w+)", sql):
        tables.setdefault(name, []).append(column)
    return tables


def test_both_dialects_have_the_same_migrations_tables_and_columns() -> None:
    sqlite, postgres = load_migrations(SQLITE), load_migrations(POSTGRES)

    assert [(m.version, m.name) for m in sqlite] == [(m.version, m.name) for m in postgres]
    for lite, pg in zip(sqlite, postgres, strict=True):
        assert _tables(lite.sql) == _tables(pg.sql)
        assert _tables(lite.sql), "the DDL parser found no tables; fix the test"
