"""Least privilege for spawned plugins: a child gets the base, formae's variables and its grant.

Read from the real child's ``/proc/PID/environ``, against the real agent's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from formae.agent.plugin_env import BASE_NAMES, BASE_PREFIXES
from tests.integration.conftest import MakeAgent

pytestmark = pytest.mark.timeout(90)


def environ(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode().split("=", 1) for e in entries if b"=" in e)


def test_a_spawned_plugin_sees_only_its_grant_of_the_agents_environment(
    agent_home: Path, make_agent: MakeAgent, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\n")
    grants = agent_home / "grants"
    grants.mkdir(mode=0o700)
    grant = {
        "env": ["FAKE_AWS_*", "ONLY_FOR_FAKE_AWS"],
        "set": {"GRANTED": "yes"},
        "files": {"CREDS": str(credentials)},
    }
    (grants / "fake-aws.json").write_text(json.dumps(grant))
    (grants / "fake-aws.json").chmod(0o600)
    env = {
        "ONLY_FOR_FAKE_AWS": "granted-value",
        "ANOTHER_PLUGINS_KEY": "not-for-fake-aws",
        "DB_PASSWORD": "agent-only",
        "FAKE_AWS_STATE_FILE": str(tmp_path / "cloud.db"),
    }
    agent = make_agent(agent_home, env=env).start()
    agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)

    mine, child = environ(agent.pid), environ(agent.plugin_pids()[0])
    assert child["ONLY_FOR_FAKE_AWS"] == "granted-value"
    assert child["GRANTED"] == "yes"
    assert child["CREDS"] == str(credentials)
    assert child["FAKE_AWS_STATE_FILE"] == str(tmp_path / "cloud.db")
    allowed = {"ONLY_FOR_FAKE_AWS", "FAKE_AWS_STATE_FILE", "FORMAE_LOG_LEVEL"}
    others = {k for k in mine if k not in allowed and k not in BASE_NAMES and not k.startswith(BASE_PREFIXES)}
    assert others >= {"ANOTHER_PLUGINS_KEY", "DB_PASSWORD", "FORMAE_HOME"}
    assert not others & set(child), f"the plugin holds the agent's {sorted(others & set(child))}"
    assert all(
        k in BASE_NAMES
        or k.startswith(("LC_", "FORMAE_", "FAKE_AWS_"))
        or k in grant["set"]
        or k in grant["files"]
        or k == "ONLY_FOR_FAKE_AWS"
        for k in child
    )
