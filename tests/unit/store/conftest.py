"""Every store test runs on both backends: SQLite in a tmp dir, PostgreSQL in a fresh schema.

PostgreSQL is found at ``FORMAE_TEST_POSTGRES_URL`` (default: the local test database). When it
is unreachable the PostgreSQL variants are skipped, unless ``FORMAE_REQUIRE_POSTGRES=1`` says
that a skip would hide a broken CI and they must fail instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from formae.store import Datastore, mask_url, open_store, sqlite_url

POSTGRES_URL = os.environ.get("FORMAE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def _admin_connection() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(POSTGRES_URL, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        reason = f"PostgreSQL is not reachable at {mask_url(POSTGRES_URL)}: {error}"
        if os.environ.get("FORMAE_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def with_search_path(url: str, schema: str) -> str:
    """asyncpg passes unknown URL query parameters on as server settings."""
    return f"{url}{'&' if '?' in url else '?'}search_path={schema}"


async def _postgres_schema_url() -> AsyncIterator[str]:
    schema = f"formae_test_{secrets.token_hex(6)}"
    admin = await _admin_connection()
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await admin.close()
    try:
        yield with_search_path(POSTGRES_URL, schema)
    finally:
        admin = await _admin_connection()
        try:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL to an empty, isolated store of each backend."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "data" / "formae.db")
        return
    async for url in _postgres_schema_url():
        yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Datastore]:
    opened = await open_store(store_url)
    try:
        yield opened
    finally:
        await opened.close()
