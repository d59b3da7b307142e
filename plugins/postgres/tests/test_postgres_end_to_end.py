"""examples/postgres.pkl through a real agent and a real plugin process against the real server.

Apply, update in place, drift made in psql (found by `formae sync`, listed by `status drift`, undone by
a forced reconcile), replace (a create-only change cascading to everything inside the database),
destroy; after each step the test asks PostgreSQL itself what exists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from postgres_plugin_support import Names, server_config
from test_postgres_roles_databases import password_matches

from formae.forma.pkl import find_pkl
from formae.testing import AgentProcess

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "postgres.pkl"
PLUGIN = Path(sys.executable).parent / "postgres-plugin"


def example_forma(prefix: str, password: str) -> dict[str, Any]:
    """The example as ``pkl eval`` renders it, with this test's names and the test server as target."""
    env = {**os.environ, "PG_PREFIX": prefix, "APP_PASSWORD": password}
    done = subprocess.run(
        [find_pkl(str(EXAMPLE)), "eval", "-f", "json", str(EXAMPLE)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    forma: dict[str, Any] = json.loads(done.stdout)
    forma["targets"][0]["config"] = server_config()
    return forma


def sync(agent: AgentProcess, query: str) -> dict[str, Any]:
    """``formae sync`` of ``query``, once it has ended."""
    with agent.client() as client:
        run: dict[str, Any] = client.request("POST", "/sync", json={"query": query})
        while run["state"] not in ("Success", "Failed"):
            run = client.request("GET", f"/sync/{run['id']}", params={"wait": 30})
    return run


def drift(agent: AgentProcess, query: str) -> list[dict[str, Any]]:
    with agent.client() as client:
        found: list[dict[str, Any]] = client.request("GET", "/drift", params={"query": query})
    return found


def apply(agent: AgentProcess, forma: dict[str, Any], *, force: bool = False) -> dict[str, Any]:
    with agent.client() as client:
        submitted = client.apply(forma, "reconcile", False, force, "test")
    return agent.wait_command(submitted["command_id"], timeout=90)


def with_properties(forma: dict[str, Any], label: str, **changes: Any) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(forma))
    resource = next(r for r in copied["resources"] if r["label"] == label)
    resource["properties"].update(changes)
    return copied


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    home = tmp_path / "home"
    installed = home / "plugins" / "postgres" / "v0.1.0" / "postgres-plugin"
    installed.parent.mkdir(parents=True)
    shutil.copy2(PLUGIN, installed)
    running = AgentProcess(home)
    try:
        running.start()
        running.wait_for_log(r"Plugin registered namespace=PostgreSQL node=\S+", timeout=20)
        yield running
    finally:
        running.cleanup()


def operations(command: dict[str, Any]) -> set[tuple[str, str]]:
    return {(u["operation"], u["label"]) for u in command["updates"]}


async def test_example_apply_update_drift_replace_destroy(
    agent: AgentProcess, names: Names, admin: asyncpg.Connection
) -> None:
    prefix, db = names.prefix, admin
    forma = example_forma(prefix, "first-password")

    applied = agent.apply_and_wait(forma, timeout=60)
    assert applied["state"] == "Success", applied
    app = await db.fetchrow(
        "SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = $1", f"{prefix}app"
    )
    assert (app["rolcanlogin"], app["rolconnlimit"]) == (True, 10)
    assert await password_matches(db, f"{prefix}app", "first-password")
    assert (
        await db.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", f"{prefix}db")
        == f"{prefix}owner"
    )
    with agent.client() as client:
        stored = client.inventory("resources", "label:app")[0]
    assert "first-password" not in json.dumps(stored.get("properties", {})), "read never returns the password"

    updated = agent.apply_and_wait(with_properties(forma, "app", ConnectionLimit=20), timeout=60)
    assert updated["state"] == "Success", updated
    assert operations(updated) == {("update", "app")}
    assert await db.fetchval("SELECT rolconnlimit FROM pg_roles WHERE rolname = $1", f"{prefix}app") == 20

    await db.execute(f'ALTER ROLE "{prefix}app" NOLOGIN CONNECTION LIMIT 1')  # drift, as in psql
    stack = f"stack:{prefix}db"
    assert sync(agent, stack)["state"] == "Success"
    [drifted] = [d for d in drift(agent, stack) if d["label"] == "app"]
    assert drifted["change"] == "changed"
    assert (drifted["after"]["Login"], drifted["after"]["ConnectionLimit"]) == (False, 1)
    assert "Password" not in drifted["after"], "a read never returns the password"
    corrected = apply(agent, with_properties(forma, "app", ConnectionLimit=30), force=True)
    assert corrected["state"] == "Success", corrected
    app = await db.fetchrow(
        "SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = $1", f"{prefix}app"
    )
    assert (app["rolcanlogin"], app["rolconnlimit"]) == (True, 30)

    old_oid = await db.fetchval("SELECT oid FROM pg_database WHERE datname = $1", f"{prefix}db")
    replaced_forma = with_properties(forma, "database", Encoding="LATIN1")
    replaced_forma = with_properties(replaced_forma, "app", ConnectionLimit=30)
    replaced = apply(agent, replaced_forma, force=True)
    assert replaced["state"] == "Success", replaced
    assert {("delete", "database"), ("create", "database"), ("create", "schema"), ("create", "citext")} <= (
        operations(replaced)
    )
    row = await db.fetchrow(
        "SELECT oid, pg_encoding_to_char(encoding) AS encoding FROM pg_database WHERE datname = $1",
        f"{prefix}db",
    )
    assert row["oid"] != old_oid
    assert row["encoding"] == "LATIN1"
    inside = await asyncpg.connect(
        host=str(server_config()["host"]),
        port=int(str(server_config()["port"])),
        user="postgres",
        database=f"{prefix}db",
    )
    try:
        assert (
            await inside.fetchval(
                "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'citext'"
            )
            == "app"
        )
    finally:
        await inside.close()

    with agent.client() as client:
        destroy = client.destroy(None, f"stack:{prefix}db", False, "test")
    destroyed = agent.wait_command(destroy["command_id"], timeout=60)
    assert destroyed["state"] == "Success", destroyed
    assert await db.fetchval("SELECT count(*) FROM pg_roles WHERE rolname LIKE $1", f"{prefix}%") == 0
    assert await db.fetchval("SELECT count(*) FROM pg_database WHERE datname LIKE $1", f"{prefix}%") == 0
