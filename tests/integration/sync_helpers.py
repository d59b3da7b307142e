"""What the sync, drift, discovery and extract tests share: the cloud console, a sync, the drift list."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.harness import AgentUnderTest

FAKE_AWS_CLOUD = Path(sys.executable).parent / "fake-aws-cloud"


def console(agent: AgentUnderTest, *args: str) -> Any:
    """Change the cloud behind the agent's back, with fake-aws's console; its JSON answer."""
    done = subprocess.run(
        [str(FAKE_AWS_CLOUD), "--state-file", str(agent.cloud_file), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


def sync(agent: AgentUnderTest, query: str = "") -> dict[str, Any]:
    """Run a sync and return it once it ended."""
    with agent.client() as client:
        run: dict[str, Any] = client.request("POST", "/sync", json={"query": query})
        while run["state"] not in ("Success", "Failed"):
            run = client.request("GET", f"/sync/{run['id']}", params={"wait": 30}, timeout=60)
    return run


def drift(agent: AgentUnderTest, query: str = "") -> list[dict[str, Any]]:
    with agent.client() as client:
        found: list[dict[str, Any]] = client.request("GET", "/drift", params={"query": query})
    return found


def inventory(agent: AgentUnderTest, query: str = "") -> dict[str, dict[str, Any]]:
    """Current resources by label."""
    with agent.client() as client:
        return {r["label"]: r for r in client.inventory("resources", query)}


def apply_forced(agent: AgentUnderTest, forma: dict[str, Any]) -> dict[str, Any]:
    """``formae apply --force``, waited for."""
    with agent.client() as client:
        submitted = client.apply(forma, "reconcile", False, True, "forma")
    return agent.wait_command(submitted["command_id"])
