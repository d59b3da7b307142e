"""Every store test runs on both backends: SQLite in a tmp dir, PostgreSQL in a fresh schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from formae.store import Datastore, open_store, sqlite_url
from tests.postgres import postgres_schema_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL to an empty, isolated store of each backend."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "data" / "formae.db")
        return
    async for url in postgres_schema_url():
        yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Datastore]:
    opened = await open_store(store_url)
    try:
        yield opened
    finally:
        await opened.close()
