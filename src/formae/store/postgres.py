"""PostgreSQL: the store several agents can share. An asyncpg pool; writes still group-commit.

The pool serves reads concurrently; writes go through the store's single ``GroupCommitter``,
which takes one pooled connection per batch. Connection and server errors are reported as
``StoreError`` naming the URL with its password masked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import asyncpg

from formae.store._dialect import POSTGRES, Row, Tx
from formae.store.datastore import Datastore
from formae.store.errors import mask_url, translated

T = TypeVar("T")

CONNECT_TIMEOUT_S = 10.0
STATEMENT_TIMEOUT_S = 30.0
"""A statement stuck longer (a lock held elsewhere, a sick server) is an outage, not a hang of the agent.

Enforced twice: by the server (``statement_timeout``) and by the client (``command_timeout``), which
also covers a server that stopped answering."""
POOL_MAX_SIZE = 10
_DRIVER_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)
_OUTAGES: tuple[type[Exception], ...] = (
    OSError,  # connection refused, reset, no route
    TimeoutError,  # connect, acquire or command timeout
    asyncpg.InterfaceError,  # the connection was closed under us
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.OperatorInterventionError,  # 57: statement timeout, admin shutdown, cannot connect now
    asyncpg.InsufficientResourcesError,  # 53: disk full, out of memory, too many connections
)


def _server_settings(url: str) -> dict[str, str]:
    """Our statement timeout, unless the URL sets one (``?statement_timeout=500``, in milliseconds)."""
    if "statement_timeout" in dict(parse_qsl(urlsplit(url).query)):
        return {}
    return {"statement_timeout": str(int(STATEMENT_TIMEOUT_S * 1000))}


def _unavailable(error: Exception) -> bool:
    return isinstance(error, _OUTAGES)


class _PostgresTx:
    """A ``Tx`` over an asyncpg connection; the SQL is already in PostgreSQL's dialect."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def execute(self, sql: str, *args: Any) -> None:
        await self._connection.execute(sql, *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._connection.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._connection.fetch(sql, *args))

    async def execute_script(self, script: str) -> None:
        await self._connection.execute(script)  # without arguments: several statements allowed


class PostgresStore(Datastore):
    def __init__(self, url: str, pool: Any) -> None:
        super().__init__(url=url, dialect=POSTGRES)
        self._pool = pool

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        """Connect, migrate under an advisory lock, start the writer task."""
        with translated(_DRIVER_ERRORS, f"cannot connect to PostgreSQL store {mask_url(url)}"):
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=POOL_MAX_SIZE,
                timeout=CONNECT_TIMEOUT_S,
                command_timeout=STATEMENT_TIMEOUT_S,
                server_settings=_server_settings(url),
            )
        store = cls(url, pool)
        await store._migrate_and_start()
        return store

    async def _transact(self, body: Callable[[Tx], Awaitable[None]], *, failure: str | None = None) -> None:
        with translated(_DRIVER_ERRORS, failure or f"cannot write to {self.url}", _unavailable):
            async with self._pool.acquire(timeout=CONNECT_TIMEOUT_S) as connection, connection.transaction():
                await body(_PostgresTx(connection))

    async def _read(self, what: str, query: Callable[[Tx], Awaitable[T]]) -> T:
        self._ensure_open()
        with translated(_DRIVER_ERRORS, f"{what} from {self.url} failed", _unavailable):
            async with self._pool.acquire(timeout=CONNECT_TIMEOUT_S) as connection:
                return await query(_PostgresTx(connection))

    async def _close_connections(self) -> None:
        await self._pool.close()
