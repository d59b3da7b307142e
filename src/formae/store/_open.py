"""Pick the backend from the URL."""

from __future__ import annotations

from formae.store.datastore import Datastore
from formae.store.errors import StoreError, mask_url
from formae.store.postgres import PostgresStore
from formae.store.sqlite import SqliteStore

_EXPECTED = "sqlite:///absolute/path/formae.db or postgresql://user@host:5432/database"


async def open_store(url: str) -> Datastore:
    """Open (creating and migrating as needed) the store at ``url``; close it with ``close()``."""
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        return await SqliteStore.open(url)
    if scheme in ("postgresql", "postgres"):
        return await PostgresStore.open(url)
    raise StoreError(f"unsupported datastore URL {mask_url(url)!r}: expected {_EXPECTED}")
