"""``postgres-plugin``: the executable the agent spawns."""

from formae.plugin import run
from formae_postgres.plugin import PostgresPlugin


def main() -> None:
    run(PostgresPlugin())


if __name__ == "__main__":
    main()
