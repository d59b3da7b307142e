"""Fixtures shared by the unit tests: a fake clock and a migrated SQLite store, defined once here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from formae.store import Datastore, open_store, sqlite_url
from tests.unit.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Datastore]:
    """A migrated SQLite store in the test's tmp dir (the store's own tests run on both backends)."""
    opened = await open_store(sqlite_url(tmp_path / "formae.db"))
    try:
        yield opened
    finally:
        await opened.close()
