"""Where a kind's objects are in PostgreSQL's catalogs: one query, read by key or listed a page at a time.

Every kind's read and list are the same query seen two ways. ``one`` finds the row of one object
by its key; ``page`` walks every row in key order, a page at a time. A kind writes its query once,
so what a read reports and what discovery lists cannot drift apart.

Pages are keyset pages: the page token is the last row's key and the next page starts after it,
so a page costs the same however deep the listing is, and objects created or dropped between two
pages neither shift nor repeat the others. Keys are compared as text in the "C" collation, the
same order in every database whatever its locale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from formae_postgres.sql import Invalid

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Page:
    rows: list[asyncpg.Record]
    next_token: str
    """The token of the page after this one; empty on the last page."""


@dataclass(frozen=True)
class Catalog:
    """One row per object: ``query`` (a SELECT), the columns that identify a row, what discovery lists."""

    query: str
    key: tuple[str, ...]
    listed: str = "true"
    """A condition on the query's columns: the rows discovery lists (system objects are left out)."""

    async def one(self, db: asyncpg.Connection, *key: str) -> asyncpg.Record | None:
        """The row whose key is ``key``; None when there is none."""
        match = " AND ".join(f"{column} = ${number}" for number, column in enumerate(self.key, 1))
        return await db.fetchrow(f"SELECT * FROM ({self.query}) AS found WHERE {match}", *key)

    async def page(self, db: asyncpg.Connection, token: str, size: int) -> Page:
        """The listed rows after the one ``token`` names (from the first when empty), at most ``size``."""
        size = min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = self._after(token)
        order = ", ".join(f'{column}::text COLLATE "C"' for column in self.key)
        bound = ", ".join(f"${number}::text" for number in range(1, len(self.key) + 1))
        start = f"({order}) > ({bound})" if after else "true"
        rows = await db.fetch(
            f"SELECT * FROM ({self.query}) AS found WHERE ({self.listed}) AND {start}"
            f" ORDER BY {order} LIMIT {size + 1}",
            *after,
        )
        if len(rows) <= size:
            return Page(list(rows), "")
        return Page(list(rows[:size]), json.dumps([str(rows[size - 1][c]) for c in self.key]))

    def _after(self, token: str) -> list[str]:
        if not token:
            return []
        try:
            after = json.loads(token)
        except ValueError:
            after = None
        if not (
            isinstance(after, list)
            and len(after) == len(self.key)
            and all(isinstance(part, str) for part in after)
        ):
            raise Invalid(f"page token {token!r} is not one this plugin gave for this type")
        return after
