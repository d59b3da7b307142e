"""The embedded default: one SQLite file in WAL mode, one writer connection, one reader.

SQLite allows a single writer at a time anyway, so one write connection driven by the group
committer is both the fastest and the simplest arrangement. WAL lets the reader connection
query committed data while a write transaction is open. ``synchronous=NORMAL`` in WAL mode
keeps every commit safe from a crash of the agent process (the case crash recovery is built
for); only an OS crash or power loss can lose the last commits.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiosqlite

from formae.store._dialect import SQLITE, Row, Tx, to_qmark
from formae.store.datastore import Datastore
from formae.store.errors import StoreError, mask_url, translated

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
_DRIVER_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, OSError)
_OUTAGE_CODES = frozenset(
    {
        sqlite3.SQLITE_FULL,  # disk (or max_page_count) full
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_BUSY,  # another process held the lock past busy_timeout
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_CANTOPEN,
    }
)


def _unavailable(error: Exception) -> bool:
    """A full disk, an I/O error or a lock held too long: the same write may succeed later."""
    if isinstance(error, OSError):
        return True
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    return code in _OUTAGE_CODES


def sqlite_url(path: Path) -> str:
    """The store URL for a database file, e.g. ``$FORMAE_HOME/data/formae.db``."""
    return "sqlite://" + str(path.resolve())


def sqlite_path(url: str) -> Path:
    """``sqlite:///abs/path/formae.db`` → ``/abs/path/formae.db``; anything else is refused."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.scheme != "sqlite" or parts.netloc or not path.startswith("/") or parts.query:
        raise StoreError(f"bad SQLite URL {mask_url(url)!r}: expected sqlite:///absolute/path/formae.db")
    return Path(path)


class _SqliteTx:
    """A ``Tx`` over an aiosqlite connection: ``$n`` placeholders become ``?n``."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, *args: Any) -> None:
        await self._connection.execute(to_qmark(sql), args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._connection.executemany(to_qmark(sql), rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._connection.execute_fetchall(to_qmark(sql), args))

    async def execute_script(self, script: str) -> None:
        """Statement by statement: ``executescript`` would COMMIT the surrounding transaction."""
        for statement in _split_statements(script):
            await self._connection.execute(statement)


class SqliteStore(Datastore):
    def __init__(self, url: str, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        super().__init__(url=url, dialect=SQLITE)
        self._writer = writer
        self._reader = reader

    @classmethod
    async def open(cls, url: str) -> SqliteStore:
        """Create the file (and its folder) if needed, migrate it, start the writer task."""
        path = sqlite_path(url)
        with translated(_DRIVER_ERRORS, f"cannot open SQLite store {mask_url(url)}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = await _connect(path, query_only=False)
            try:
                reader = await _connect(path, query_only=True)
            except BaseException:
                await writer.close()
                raise
        store = cls(url, writer, reader)
        await store._migrate_and_start()
        return store

    async def _transact(self, body: Callable[[Tx], Awaitable[None]], *, failure: str | None = None) -> None:
        with translated(_DRIVER_ERRORS, failure or f"cannot write to {self.url}", _unavailable):
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                await body(_SqliteTx(self._writer))
            except BaseException:
                await self._rollback()
                raise
            await self._writer.execute("COMMIT")

    async def _rollback(self) -> None:
        """Best effort: if ROLLBACK fails too, the original error is the one worth reporting."""
        with suppress(*_DRIVER_ERRORS):  # includes "no transaction is active"
            await self._writer.execute("ROLLBACK")

    async def _read(self, what: str, query: Callable[[Tx], Awaitable[T]]) -> T:
        self._ensure_open()
        with translated(_DRIVER_ERRORS, f"{what} from {self.url} failed", _unavailable):
            return await query(_SqliteTx(self._reader))

    async def _close_connections(self) -> None:
        try:
            await self._reader.close()
        finally:
            await self._writer.close()


async def _connect(path: Path, *, query_only: bool) -> aiosqlite.Connection:
    # isolation_level=None: no implicit BEGINs; the store issues BEGIN IMMEDIATE / COMMIT itself.
    connection = await aiosqlite.connect(path, isolation_level=None)
    try:
        connection.row_factory = sqlite3.Row
        await connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if query_only:
            await connection.execute("PRAGMA query_only = ON")
        else:
            await _set_write_pragmas(connection)
    except BaseException:
        await connection.close()
        raise
    return connection


async def _set_write_pragmas(connection: aiosqlite.Connection) -> None:
    mode = await _enable_wal(connection)
    if mode.lower() != "wal":
        raise StoreError(f"SQLite refused WAL mode (journal_mode is {mode!r}); is the file read-only?")
    await connection.execute("PRAGMA synchronous = NORMAL")
    await connection.execute("PRAGMA foreign_keys = ON")


async def _enable_wal(connection: aiosqlite.Connection) -> str:
    """Switch to WAL, retrying while another opener holds the lock.

    Changing the journal mode of a new file takes an exclusive lock for which SQLite does not
    always call the busy handler, so two agents (or tests) opening one new file at once would
    otherwise see "database is locked".
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            rows = await connection.execute_fetchall("PRAGMA journal_mode = WAL")
            return str(next(iter(rows))[0])
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.01)


def _is_busy(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # extended codes keep the primary in the low byte
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _split_statements(script: str) -> list[str]:
    """Split on statement boundaries as SQLite sees them (semicolons in strings are safe)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip() and not _only_comments(current):
        raise StoreError(f"incomplete SQL statement at the end of a migration: {current.strip()[:80]!r}")
    return [s for s in statements if not _only_comments(s)]


def _only_comments(sql: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in sql.splitlines())
