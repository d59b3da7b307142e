"""The TypeScript SDK's example plugin (53 lines) against a real agent, spawned and joined from afar.

It must do what fake-aws does: register, create, update, delete asynchronously (IN_PROGRESS, then
Status), leave a plan of the same forma empty, and stop with its agent; joined with a one-time
token it trades the token for a certificate (its own CSR) and shows as remote.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from formae.testing.agent import pid_alive, wait_until
from tests.integration.conftest import MakeAgent
from tests.integration.harness import join_token
from tests.integration.typescript import NOTES_EXAMPLE, node, wrapper

pytestmark = pytest.mark.timeout(90)


def notes_forma(*notes: tuple[str, str]) -> dict[str, Any]:
    return {
        "stacks": [{"label": "pad"}],
        "targets": [{"label": "mem", "namespace": "Notes", "config": {}}],
        "resources": [
            {
                "label": title,
                "type": "Notes::Pad::Note",
                "stack": "pad",
                "target": "mem",
                "properties": {"Title": title, "Text": text},
            }
            for title, text in notes
        ],
    }


def test_the_example_applies_converges_and_dies_with_its_agent(tmp_path: Path, make_agent: MakeAgent) -> None:
    home = tmp_path / "home"
    wrapper(home / "plugins" / "notes" / "v1.0.0" / "notes-plugin", NOTES_EXAMPLE)
    agent = make_agent(home).start()
    agent.wait_for_log(r"Plugin registered namespace=Notes node=\S+ version=1.0.0 location=local", timeout=20)

    first = agent.apply_and_wait(notes_forma(("a", "1"), ("b", "2")))
    changed = agent.apply_and_wait(notes_forma(("a", "1"), ("b", "3")))
    with agent.client() as client:
        plan = client.apply(notes_forma(("a", "1"), ("b", "3")), "reconcile", True, False, "forma")
    emptied = agent.apply_and_wait(notes_forma())

    assert (first["state"], changed["state"], emptied["state"]) == ("Success", "Success", "Success")
    assert [u["operation"] for u in changed["updates"]] == ["update"]
    assert plan["changes"] == []
    assert sorted(u["request_id"] for u in emptied["updates"]) == [
        "delete:a",
        "delete:b",
    ]  # IN_PROGRESS, polled
    with agent.client() as client:
        assert client.inventory("resources") == []
    (pid,) = agent.plugin_pids()
    assert agent.stop() == 0
    wait_until(lambda: not pid_alive(pid), 10, "the TypeScript plugin to exit with its agent")


def test_the_example_joins_with_a_token_and_serves_as_a_remote_plugin(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    agent = make_agent(tmp_path / "home").start()
    env = {
        "PATH": "/usr/bin:/bin",
        "FORMAE_JOIN_TOKEN": join_token(agent, "Notes"),
        "FORMAE_PLUGIN_NODE": "notes@elsewhere",
        "FORMAE_PLUGIN_STATE_DIR": str(tmp_path / "state"),
    }
    with (tmp_path / "plugin.log").open("wb") as log:
        plugin = subprocess.Popen([node(), str(NOTES_EXAMPLE)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        agent.wait_for_log(
            r"Plugin registered namespace=Notes node=notes@elsewhere .*location=remote", timeout=20
        )
        assert agent.apply_and_wait(notes_forma(("far", "away")))["state"] == "Success"
        assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [
            "ca.crt",
            "cookie",
            "grant.json",
            "plugin.crt",
            "plugin.key",
        ]
        assert (tmp_path / "state" / "plugin.key").stat().st_mode & 0o077 == 0
        plugin.terminate()
        assert plugin.wait(10) == 0
    finally:
        if plugin.poll() is None:
            plugin.kill()
            plugin.wait(10)
