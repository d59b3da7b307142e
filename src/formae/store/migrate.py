"""Bring a database's schema up to date, once, in one transaction, at open.

Migration files are ``migrations/<dialect>/NNNN_name.sql``, applied in number order and recorded
in ``schema_migrations``. The caller runs ``migrate`` inside a write transaction; on PostgreSQL
the dialect's advisory lock is taken first so two agents opening the same database at once do
not both try to create the tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files

from formae.store._dialect import Dialect, Tx
from formae.store.errors import StoreError
from formae.store.records import utc_now

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: Dialect) -> list[Migration]:
    """The dialect's migrations in order; each number used once.

    Gaps are allowed: numbers are handed out to pieces of work developed in parallel, which land
    in any order, and a database that has a later migration gets an earlier one when it arrives
    (migrations are independent of each other's order).
    """
    folder = files("formae.store.migrations") / dialect.name
    found = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions) or any(v < 1 for v in versions):
        raise StoreError(f"{dialect.name} migrations must have distinct numbers from 1: {versions}")
    return found


async def migrate(tx: Tx, dialect: Dialect) -> list[int]:
    """Apply the pending migrations; returns the versions applied (empty when up to date)."""
    if dialect.migration_lock:
        await tx.execute(dialect.migration_lock)
    await tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        f" applied_at {dialect.timestamp_type} NOT NULL)"
    )
    # Fails at once on a read-only database (file, mount, standby) that would otherwise open
    # fine and fail at the agent's first write, far from the cause. Deletes nothing.
    await tx.execute("DELETE FROM schema_migrations WHERE version < 0")
    applied = {int(row["version"]) for row in await tx.fetch("SELECT version FROM schema_migrations")}
    migrations = load_migrations(dialect)
    _refuse_newer_schema(applied, migrations)
    done = []
    for migration in migrations:
        if migration.version not in applied:
            await tx.execute_script(migration.sql)
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                dialect.encode_time(utc_now()),
            )
            done.append(migration.version)
    return done


def _refuse_newer_schema(applied: set[int], known: list[Migration]) -> None:
    """A database migrated by a newer formae must not be written by an older one."""
    unknown = sorted(applied - {m.version for m in known})
    if unknown:
        raise StoreError(
            f"the database has schema migrations {unknown} that this formae does not know;"
            " it was written by a newer version of formae"
        )
