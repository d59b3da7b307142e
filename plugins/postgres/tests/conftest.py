"""Fixtures for the plugin's tests: an admin connection, unique names cleaned up after, the harness.

Roles and databases are cluster-wide, so every test gets a random prefix; whatever carries it is
dropped after the test, whether the test passed or not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from formae_postgres import PostgresPlugin
from postgres_plugin_support import Names, drop_everything, server_config

from formae.plugin import TargetInfo
from formae.plugin.testing import PluginHarness
from tests.postgres import admin_connection


@pytest.fixture
async def admin() -> AsyncIterator[asyncpg.Connection]:
    connection = await admin_connection()
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def names(admin: asyncpg.Connection) -> AsyncIterator[Names]:
    made = Names()
    try:
        yield made
    finally:
        await drop_everything(admin, made.prefix)


@pytest.fixture
async def pg(names: Names) -> AsyncIterator[PluginHarness]:
    target = TargetInfo("pg", "PostgreSQL", server_config())
    async with PluginHarness(PostgresPlugin(), target) as harness:
        yield harness
