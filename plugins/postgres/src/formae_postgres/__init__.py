"""postgres: a formae resource plugin that manages a real PostgreSQL server's databases, roles and grants."""

from formae_postgres.plugin import PostgresPlugin

__all__ = ["PostgresPlugin"]
