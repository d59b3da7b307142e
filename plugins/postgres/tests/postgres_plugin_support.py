"""Helpers shared by the plugin's tests: the test server as a target, unique names, result checks."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import asyncpg

from formae.plugin import ErrorCode, OperationStatus, ProgressResult
from tests.postgres import POSTGRES_URL


def server_config() -> dict[str, object]:
    """The target config naming the test server, as a forma would."""
    url = urlsplit(POSTGRES_URL)
    return {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "database": url.path.lstrip("/") or "postgres",
        "sslmode": "disable",
    }


class Names:
    """Unique names for one test: ``names("app")`` → ``fpt_1a2b3c4d_app``."""

    def __init__(self) -> None:
        self.prefix = f"fpt_{secrets.token_hex(4)}_"

    def __call__(self, name: str) -> str:
        return self.prefix + name


async def drop_everything(admin: asyncpg.Connection, prefix: str) -> None:
    """Drop every database, schema and role whose name starts with ``prefix``."""
    pattern = prefix.replace("_", r"\_") + "%"
    for (database,) in await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", pattern):
        await admin.execute(f'ALTER DATABASE "{database}" WITH IS_TEMPLATE false')
        await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    for (schema,) in await admin.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", pattern):
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    for (role,) in await admin.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE $1", pattern):
        await admin.execute(f'DROP OWNED BY "{role}"')
        await admin.execute(f'DROP ROLE "{role}"')


def ok(result: ProgressResult) -> ProgressResult:
    assert result.status is OperationStatus.SUCCESS, result
    return result


def failed(result: ProgressResult, code: ErrorCode) -> str:
    assert result.status is OperationStatus.FAILURE, result
    assert result.error_code is code, result
    return result.message
