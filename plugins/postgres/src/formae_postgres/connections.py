"""Connections to the servers named by targets: one small pool per (server, database).

A target names a server and the database the plugin connects to first (``database``, default
``postgres``); databases, roles and the other cluster-wide objects are managed through it. Schemas,
extensions, grants and default privileges live inside one database, so they are managed through a
pool to that database, opened on first use. A database's pool is closed before the database is
dropped: our own idle connections must not be what keeps ``DROP DATABASE`` from succeeding.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from formae.plugin import JsonObject, TargetInfo
from formae_postgres.sql import Invalid, plain

POOL_SIZE = 4
CONNECT_TIMEOUT = 10.0
SERVER_SETTINGS = {"jit": "off"}
"""The catalogs' statistics make the planner guess millions of rows for a grant listing of a few
thousand objects, and compile it (seconds); every query of this plugin is small."""
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class Server:
    """Where a target's server is and how to log in; what libpq's environment says when not set."""

    host: str | None = None
    port: int | None = None
    user: str | None = None
    database: str = "postgres"
    sslmode: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # the password stays out of every log line and error
        return (
            f"Server(host={self.host!r}, port={self.port!r}, user={self.user!r}, database={self.database!r})"
        )

    @classmethod
    def of(cls, target: TargetInfo) -> Server:
        config = target.config
        sslmode = _optional(config, "sslmode")
        if sslmode is not None and sslmode not in SSL_MODES:
            raise Invalid(f"target {target.label}: sslmode must be one of {', '.join(SSL_MODES)}")
        port = config.get("port")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
            raise Invalid(f"target {target.label}: port must be an integer")
        return cls(
            host=_optional(config, "host"),
            port=port,
            user=_optional(config, "user"),
            database=_optional(config, "database") or "postgres",
            sslmode=sslmode,
            password=_optional(config, "password"),
        )

    def connect_arguments(self, database: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "database": database,
            "timeout": CONNECT_TIMEOUT,
            "server_settings": SERVER_SETTINGS,
        }
        for name in ("host", "port", "user", "password"):
            if getattr(self, name) is not None:
                arguments[name] = getattr(self, name)
        if self.sslmode is not None:
            arguments["ssl"] = self.sslmode
        return arguments


def _optional(config: JsonObject, name: str) -> Any:
    return plain(config.get(name))


class Connections:
    """The pools of every server this plugin talks to; closed with the plugin."""

    def __init__(self) -> None:
        self._pools: dict[tuple[Server, str], asyncpg.Pool] = {}
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def to(self, server: Server, database: str | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A connection to ``database`` on ``server`` (the target's own database by default)."""
        pool = await self._pool(server, database or server.database)
        async with pool.acquire() as connection:
            yield connection

    async def forget(self, server: Server, database: str) -> None:
        """Close our pool to ``database``, so that it can be dropped or renamed."""
        async with self._lock:
            pool = self._pools.pop((server, database), None)
        if pool is not None:
            await pool.close()

    async def close(self) -> None:
        async with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(pool.close() for pool in pools), return_exceptions=True)

    async def _pool(self, server: Server, database: str) -> asyncpg.Pool:
        key = (server, database)
        async with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = await asyncpg.create_pool(
                    min_size=0, max_size=POOL_SIZE, **server.connect_arguments(database)
                )
                self._pools[key] = pool
            return pool
