"""Role passwords given as sealed secrets, through a real agent, on a server that checks passwords.

One role's password comes from the agent's environment (``{"$secret": {"env": …}}``), another's is
an opaque value in the forma, and the plugin's own login (the target's password) is one too. The
roles then log in with them, and not with anything else; a changed password takes over from the
old one. None of the values is anywhere under the agent's home, in any output, on any command
line, or in the server's statement log (the plugin sends SCRAM verifiers, never the password).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from scram_server import ScramServer, unavailable

from formae.testing import AgentProcess
from tests.secret_traces import Cli, assert_nowhere, opaque, secret

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

PLUGIN = Path(sys.executable).parent / "postgres-plugin"
PASSWORD_VARIABLE = "PG_APP_PASSWORD"


@pytest.fixture
def values() -> dict[str, str]:
    return {name: secret(name) for name in ("admin", "env", "inline", "inline2")}


@pytest.fixture
def server(values: dict[str, str]) -> Iterator[ScramServer]:
    reason = unavailable()
    if reason is not None:
        if os.environ.get("FORMAE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"the password tests need a private PostgreSQL server: {reason}")
        pytest.skip(reason)
    running = ScramServer.start(values["admin"])
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def agent(tmp_path: Path, values: dict[str, str]) -> Iterator[AgentProcess]:
    home = tmp_path / "home"
    installed = home / "plugins" / "postgres" / "v0.1.0" / "postgres-plugin"
    installed.parent.mkdir(parents=True)
    shutil.copy2(PLUGIN, installed)
    grant = home / "grants" / "postgres.json"  # the plugin is not given the password's variable
    grant.parent.mkdir(mode=0o700)
    grant.write_text(json.dumps({"env": ["PYTHON*", "VIRTUAL_ENV", "COVERAGE_*"]}))
    running = AgentProcess(home, env={PASSWORD_VARIABLE: values["env"]})
    try:
        running.start()
        running.wait_for_log(r"Plugin registered namespace=PostgreSQL node=\S+", timeout=20)
        yield running
    finally:
        running.cleanup()


def roles_forma(server: ScramServer, admin: str, inline: str) -> dict[str, Any]:
    def role(name: str, password: object) -> dict[str, Any]:
        properties = {"Name": name, "Login": True, "Password": password}
        return {
            "label": name,
            "type": "PostgreSQL::Role",
            "stack": "sec",
            "target": "pg",
            "properties": properties,
        }

    return {
        "stacks": [{"label": "sec"}],
        "targets": [
            {
                "label": "pg",
                "namespace": "PostgreSQL",
                "config": {**server.config(), "password": opaque(admin)},
            }
        ],
        "resources": [
            role("from_env", {"$secret": {"env": PASSWORD_VARIABLE}}),
            role("inline", opaque(inline)),
        ],
    }


async def logs_in(server: ScramServer, role: str, password: str) -> bool:
    try:
        connection = await asyncpg.connect(
            host="127.0.0.1", port=server.port, user=role, password=password, database="postgres", timeout=10
        )
    except asyncpg.InvalidPasswordError:
        return False
    try:
        return bool(await connection.fetchval("SELECT current_user") == role)
    finally:
        await connection.close()


async def test_role_passwords_given_as_secrets_log_in_and_leave_no_trace(
    server: ScramServer, agent: AgentProcess, tmp_path: Path, values: dict[str, str]
) -> None:
    cli, path = Cli(agent), tmp_path / "roles.json"
    path.write_text(json.dumps(roles_forma(server, values["admin"], values["inline"])))

    cli("apply", "--watch", str(path))
    assert await logs_in(server, "from_env", values["env"])
    assert await logs_in(server, "inline", values["inline"])
    assert not await logs_in(server, "inline", values["env"])

    path.write_text(json.dumps(roles_forma(server, values["admin"], values["inline2"])))
    plan = json.loads(cli("apply", "--simulate", "-o", "json", str(path)).stdout)
    assert [(c["label"], c["operation"]) for c in plan["changes"]] == [("inline", "update")]
    cli("apply", "--watch", str(path))
    assert await logs_in(server, "inline", values["inline2"])
    assert not await logs_in(server, "inline", values["inline"]), "the old password no longer works"
    assert await logs_in(server, "from_env", values["env"])

    for output in ("json", "human"):
        cli("inventory", "resources", "--query", "stack:sec", "-o", output)
        cli("inventory", "targets", "-o", output)
        cli("status", "command", "-o", output)
    cli("sync", "--query", "stack:sec", "--watch", expect=None)
    cli("status", "drift", "-o", "json", expect=None)
    with agent.client() as client:
        api = [client.inventory("resources"), client.inventory("targets"), client.commands(limit=20)]
        api += [client.command(c["id"]) for c in api[2]]
    cli.snapshot()  # the plugin's command line, with the agent still running

    agent.stop()
    assert_nowhere(values, agent.home, cli, json.dumps(api))
    logged = server.log.read_text()
    assert "CREATE ROLE" in logged, "the server logs statements"
    assert not [name for name, value in values.items() if value in logged], "a password in the server's log"
