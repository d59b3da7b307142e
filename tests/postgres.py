"""Isolated PostgreSQL schemas for tests, so that tests on the shared database cannot interfere.

PostgreSQL is found at ``FORMAE_TEST_POSTGRES_URL`` (default: the local test database). When it
is unreachable the PostgreSQL variants are skipped, unless ``FORMAE_REQUIRE_POSTGRES=1`` says
that a skip would hide a broken CI and they must fail instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from formae.store import mask_url

POSTGRES_URL = os.environ.get("FORMAE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def admin_connection() -> asyncpg.Connection:
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


async def create_schema() -> str:
    schema = f"formae_test_{secrets.token_hex(6)}"
    admin = await admin_connection()
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await admin.close()
    return schema


async def drop_schema(schema: str) -> None:
    admin = await admin_connection()
    try:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await admin.close()


async def postgres_schema_url() -> AsyncIterator[str]:
    """The URL of a fresh, empty schema, dropped when the iterator is closed."""
    schema = await create_schema()
    try:
        yield with_search_path(POSTGRES_URL, schema)
    finally:
        await drop_schema(schema)
