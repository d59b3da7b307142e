"""The REST API's gate with real agents: tokens and roles, other local users, Host names, TLS.

"Another local user" is ``nobody``, through ``setpriv`` (the tests run as root); such a user can
reach 127.0.0.1 like anyone, but cannot read the agent's home, where its token lives.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import AgentUnderTest, network_forma
from tests.integration.netns import HostNetwork, free_port, namespaces_unavailable
from tests.postgres import POSTGRES_URL, create_schema, drop_schema, with_search_path

pytestmark = pytest.mark.timeout(120)

FORMAE = Path(sys.executable).parent / "formae"
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def formae(
    env: dict[str, str], *args: str, prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(prefix or []), str(FORMAE), *args],
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def curl(url: str, *args: str, prefix: list[str] | None = None) -> tuple[int, str]:
    """The HTTP status (0 when no HTTP answer came) and the body."""
    result = subprocess.run(
        [*(prefix or []), "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10", *args, url],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    body, _, code = result.stdout.rpartition("\n")
    return int(code or 0), body


def state(agent: AgentUnderTest) -> tuple[Any, ...]:
    """Everything a mutating call could change: commands, resources, the cloud, the tokens."""
    with agent.client() as client:
        commands = [(c["id"], c["state"]) for c in client.commands(limit=100)]
        resources = [(r["label"], r["version"]) for r in client.inventory("resources")]
        tokens = client.api_tokens()
    return commands, resources, sorted(agent.cloud()), tokens, agent.log_count("join token created")


needs_setpriv = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("curl") is None,
    reason="needs root, setpriv and curl to act as another local user",
)


@needs_setpriv
def test_another_local_user_can_change_nothing(agent: AgentUnderTest) -> None:
    agent.apply_and_wait(network_forma())
    before = state(agent)
    url = agent.runtime["api_url"] + "/api/v1"
    assert curl(f"{url}/health", prefix=NOBODY)[0] == 200  # reachable: the API is there

    forma = json.dumps({"forma": network_forma(), "mode": "reconcile"})
    attempts = [
        ("POST", "/commands/apply", forma),
        ("POST", "/commands/destroy", json.dumps({"query": "stack:net"})),
        ("POST", f"/commands/{before[0][0][0]}/cancel", ""),
        ("POST", "/plugins/tokens", json.dumps({"namespaces": ["FakeAWS"]})),
        ("POST", "/auth/tokens", json.dumps({"role": "admin"})),
        ("DELETE", "/auth/tokens/whatever", ""),
        ("GET", "/resources", ""),
    ]
    for method, path, body in attempts:
        data = ["-H", "content-type: application/json", "--data", body] if body else []
        code, answer = curl(f"{url}{path}", "-X", method, *data, prefix=NOBODY)
        assert code == 401, f"{method} {path} answered {code}: {answer}"
        # a token that is not the agent's: made up, or guessed with the right id
        bearer = ["-H", "authorization: Bearer fma1.local.guessed"]
        assert curl(f"{url}{path}", "-X", method, *bearer, *data, prefix=NOBODY)[0] == 401

    env = {"FORMAE_HOME": str(agent.home), "FORMAE_API_URL": agent.runtime["api_url"]}
    destroyed = formae(env, "destroy", "--query", "stack:net", prefix=NOBODY)
    assert destroyed.returncode == 3, destroyed.stderr
    assert "a valid API token is needed" in destroyed.stderr
    minted = formae(env, "plugin", "token", "create", "--namespace", "FakeAWS", prefix=NOBODY)
    assert minted.returncode == 3, minted.stderr
    assert minted.stdout == ""
    assert formae(env, "api", "token", "create", "--role", "admin", prefix=NOBODY).returncode == 3
    unreadable = subprocess.run([*NOBODY, "cat", str(agent.home / "run" / "api.token")], capture_output=True)
    assert unreadable.returncode != 0

    assert state(agent) == before
    assert agent.log_count(r"API authentication failed peer=127\.0\.0\.1:\d+") >= 1


def test_roles_read_operator_admin_and_revoke(agent: AgentUnderTest, tmp_path: Path) -> None:
    env = agent.cli_env()
    tokens = {}
    for role in ("read", "operator", "admin"):
        created = formae(env, "api", "token", "create", "--role", role, "--description", f"{role} test")
        assert created.returncode == 0, created.stderr
        tokens[role] = created.stdout.strip()
        assert tokens[role].startswith("fma1.")
        assert tokens[role] not in created.stderr
    forma = tmp_path / "net.json"
    forma.write_text(json.dumps(network_forma()))

    def as_role(role: str, *args: str) -> subprocess.CompletedProcess[str]:
        return formae({**env, "FORMAE_API_TOKEN": tokens[role]}, *args)

    refused = as_role("read", "apply", str(forma))
    assert refused.returncode == 3
    assert "role operator" in refused.stderr, refused.stderr
    assert as_role("read", "inventory", "resources").returncode == 0
    assert as_role("read", "plugin", "list").returncode == 0
    assert as_role("operator", "apply", "--watch", str(forma)).returncode == 0
    assert as_role("operator", "plugin", "token", "create", "--namespace", "FakeAWS").returncode == 3
    assert as_role("operator", "api", "token", "list").returncode == 3
    assert as_role("admin", "plugin", "token", "create", "--namespace", "FakeAWS").returncode == 0

    listed = formae(env, "api", "token", "list", "--output", "json")
    rows = json.loads(listed.stdout)
    assert {r["role"] for r in rows} == {"read", "operator", "admin"}
    assert not any(tokens[r].split(".")[2] in listed.stdout for r in tokens)  # never a secret
    read_id = tokens["read"].split(".")[1]
    assert formae(env, "api", "token", "revoke", read_id).returncode == 0
    assert as_role("read", "inventory", "resources").returncode == 3

    audit = [json.loads(line) for line in (agent.home / "logs" / "audit.log").read_text().splitlines()]
    whats = {(e["who"], e["what"], e["outcome"]) for e in audit}
    assert (tokens["operator"].split(".")[1], "POST /api/v1/commands/apply", "ok") in whats
    assert ("local", f"DELETE /api/v1/auth/tokens/{read_id}", "ok") in whats
    assert any(e["outcome"] == "forbidden" and e["who"] == read_id for e in audit)
    assert all(e["where"].startswith("127.0.0.1:") and e["time"] for e in audit)
    for token in tokens.values():
        assert token.split(".")[2] not in (agent.home / "logs" / "audit.log").read_text()


def test_a_foreign_host_header_is_refused(agent: AgentUnderTest) -> None:
    url = agent.runtime["api_url"] + "/api/v1/resources"
    bearer = ["-H", f"authorization: Bearer {agent.api_token}"]
    assert curl(url, *bearer)[0] == 200
    assert curl(url, *bearer, "-H", "Host: localhost")[0] == 200
    code, body = curl(url, *bearer, "-H", "Host: attacker.example:49684")
    assert code == 400
    assert "Host header" in body


def test_failed_authentications_are_logged_once_per_peer_and_burst(agent: AgentUnderTest) -> None:
    url = agent.runtime["api_url"] + "/api/v1/commands"
    for _ in range(25):
        assert curl(url, "-H", "authorization: Bearer fma1.nope.nope")[0] == 401
    assert agent.log_count("API authentication failed") == 1
    audit = (agent.home / "logs" / "audit.log").read_text().splitlines()
    assert sum('"unauthenticated"' in line for line in audit) == 1


@pytest.mark.skipif(namespaces_unavailable() is not None, reason=str(namespaces_unavailable()))
def test_the_api_beyond_loopback_speaks_tls_to_the_cli_and_refuses_plain_http(
    agent_home: Path, make_agent: Any, tmp_path: Path
) -> None:
    network = HostNetwork("netns")
    try:
        host = network.add_host("cli")
        address = f"{host.agent_address}:{free_port(host.agent_address)}"
        agent = make_agent(agent_home, api_address=address).start()
        agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
        assert agent.runtime["api_url"] == f"https://{address}"
        env = {
            "PATH": os.environ["PATH"],
            "FORMAE_HOME": str(tmp_path / "elsewhere"),  # another host: no agent home there
            "FORMAE_API_URL": f"https://{address}",
            "FORMAE_API_TOKEN": agent.api_token,
            "FORMAE_API_CA": str(agent.api_ca),
        }
        forma = tmp_path / "net.json"
        forma.write_text(json.dumps(network_forma()))
        for args in (["apply", "--watch", str(forma)], ["inventory", "resources", "-o", "json"]):
            log = tmp_path / f"{args[0]}.out"
            cli = network.run_in(host, [str(FORMAE), *args], env, log=log)
            assert cli.wait(60) == 0, log.read_text()
        assert len(json.loads(log.read_text())) == 3

        untrusted = network.run_in(host, [str(FORMAE), "plugin", "list"], {**env, "FORMAE_API_CA": ""})
        assert untrusted.wait(60) == 4  # a certificate it cannot verify is no agent to talk to
        plain = network.run_in(
            host,
            ["curl", "-sS", "--max-time", "5", f"http://{address}/api/v1/health"],
            env,
            log=tmp_path / "c",
        )
        assert plain.wait(30) != 0  # a TLS listener gives plain HTTP no answer
        assert "Plugin registered" in agent.log()
    finally:
        network.close()


def test_plain_http_beyond_loopback_needs_insecure_api_and_is_warned_about(tmp_path: Path) -> None:
    refused = formae(
        {"FORMAE_HOME": str(tmp_path / "home")}, "agent", "start", "--api-address=0.0.0.0:0", "--no-api-tls"
    )
    assert refused.returncode == 2
    assert "--insecure-api" in refused.stderr


def test_the_home_is_made_private_at_start_and_a_foreign_file_refused(
    agent_home: Path, make_agent: Any
) -> None:
    agent_home.chmod(0o755)
    (agent_home / "logs").mkdir(mode=0o755)
    (agent_home / "logs" / "agent.log").write_text("an old log\n")
    (agent_home / "logs" / "agent.log").chmod(0o644)
    agent = make_agent(agent_home).start()
    agent.wait_for_log("file permissions fixed")
    for path in (
        agent_home,
        agent_home / "logs",
        agent_home / "run",
        agent_home / "data",
        agent_home / "pki",
    ):
        assert path.stat().st_mode & 0o077 == 0, path
    private = [
        "network.cookie",
        "secrets.key",
        "run/api.token",
        "run/agent.json",
        "logs/agent.log",
        "data/formae.db",
    ]
    for name in private:
        assert (agent_home / name).stat().st_mode & 0o777 == 0o600, name
    assert (agent_home / "pki" / "ca.key").stat().st_mode & 0o777 == 0o600
    agent.stop()

    os.chown(agent_home / "network.cookie", 65534, 65534)  # someone else's, now
    refused = formae({"FORMAE_HOME": str(agent_home)}, "agent", "start", "--api-address=127.0.0.1:0")
    assert refused.returncode != 0
    assert "belongs to uid 65534" in refused.stderr + refused.stdout


@pytest.mark.postgres
def test_a_background_agent_keeps_the_store_password_off_every_command_line(tmp_path: Path) -> None:
    schema = asyncio.run(create_schema())
    password = f"pw{os.getpid()}x{len(str(tmp_path))}secret"
    url = with_search_path(POSTGRES_URL.replace("postgres@", f"postgres:{password}@"), schema)
    env = {"FORMAE_HOME": str(tmp_path / "home"), "FORMAE_STORE_URL": url}
    try:
        started = formae(
            env, "agent", "start", "--background", "--api-address=127.0.0.1:0", "--plugin-address=127.0.0.1:0"
        )
        assert started.returncode == 0, started.stderr
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        status = formae({"FORMAE_HOME": str(tmp_path / "home")}, "agent", "status", "-o", "json")
        assert status.returncode == 0, status.stderr
        assert password not in ps
        assert password not in status.stdout + status.stderr + started.stdout + started.stderr
    finally:
        formae({"FORMAE_HOME": str(tmp_path / "home")}, "agent", "stop")
        asyncio.run(drop_schema(schema))
    assert all(password.encode() not in p.read_bytes() for p in (tmp_path / "home").rglob("*") if p.is_file())
