"""Where SQLite and PostgreSQL disagree, in one small object instead of two copies of every query.

All SQL in the store is written once with PostgreSQL's ``$1`` placeholders. SQLite accepts
numbered ``?1`` parameters with the same meaning (including reuse of one parameter twice), so
the SQLite transaction handle rewrites ``$n`` to ``?n`` and nothing else. Times are stored as
TIMESTAMPTZ in PostgreSQL and as fixed-width ISO-8601 UTC text in SQLite; JSON is passed as
text to both drivers (asyncpg's default codec for JSONB is text), so JSON needs no dialect.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

_DOLLAR_PARAM = re.compile(r"\$(\d+)")


class Row(Protocol):
    """Both ``sqlite3.Row`` and ``asyncpg.Record`` are read by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


class Tx(Protocol):
    """A connection inside a transaction (or, for reads, a connection in autocommit)."""

    async def execute(self, sql: str, *args: Any) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def execute_script(self, script: str) -> None:
        """Run several ``;``-separated statements, e.g. a migration file."""
        ...


@lru_cache(maxsize=256)
def to_qmark(sql: str) -> str:
    """``$1`` → ``?1``: SQLite's spelling of the same numbered parameter."""
    return _DOLLAR_PARAM.sub(r"?\1", sql)


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    """Also the name of the folder holding this dialect's migrations."""
    times_as_text: bool
    timestamp_type: str
    migration_lock: str | None
    """SQL that serialises concurrent migrators inside the migration transaction, if needed."""
    tables_sql: str
    """The schema's tables, one ``name`` per row, from the catalog."""
    foreign_keys_sql: str
    """The schema's foreign keys, one (``child``, ``parent``) table pair per row, from the catalog."""
    clock_sql: str | None
    """The database's own time (one ``now`` column): leases between agents are timed by one clock."""
    claims_lock: str | None
    """SQL that serialises claim checks of agents sharing the database, inside their transaction."""
    shared: bool
    """Whether several agents may share the database (PostgreSQL), or only one (a SQLite file)."""

    def encode_time(self, value: datetime | None) -> datetime | str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store naive datetime {value!r}: use a UTC-aware datetime")
        value = value.astimezone(UTC)
        return value.isoformat(timespec="microseconds") if self.times_as_text else value

    def decode_time(self, value: Any) -> datetime:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if not isinstance(value, datetime):
            raise TypeError(f"expected a timestamp from the database, got {value!r}")
        return value.astimezone(UTC)

    def decode_optional_time(self, value: Any) -> datetime | None:
        return None if value is None else self.decode_time(value)


SQLITE = Dialect(
    name="sqlite",
    times_as_text=True,
    timestamp_type="TEXT",
    migration_lock=None,  # BEGIN IMMEDIATE already holds the database's single write lock
    tables_sql="SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    foreign_keys_sql=(
        'SELECT m.name AS child, f."table" AS parent'
        " FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table'"
    ),
    clock_sql=None,  # one agent, one clock
    claims_lock=None,  # BEGIN IMMEDIATE: one writer at a time already
    shared=False,
)

POSTGRES = Dialect(
    name="postgres",
    times_as_text=False,
    timestamp_type="TIMESTAMPTZ",
    # Transaction-scoped, so it is released by COMMIT/ROLLBACK even if the opener dies.
    migration_lock="SELECT pg_advisory_xact_lock(hashtext('formae.schema_migrations'))",
    tables_sql="SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()",
    foreign_keys_sql=(
        "SELECT t.relname AS child, p.relname AS parent"
        " FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class p ON p.oid = c.confrelid"
        " WHERE c.contype = 'f' AND t.relnamespace = current_schema()::regnamespace"
    ),
    clock_sql="SELECT clock_timestamp() AS now",
    # Transaction-scoped: two agents admitting overlapping commands at once are checked one after the other.
    claims_lock="SELECT pg_advisory_xact_lock(hashtext('formae.command_claims'))",
    shared=True,
)
