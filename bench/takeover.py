"""Takeover time: from the SIGKILL of the agent running a command to another agent holding its lease.

Two agents share one PostgreSQL schema and one fake cloud, with the default lease timings
(``cluster.command_lease`` 6 s, renewed every 2 s). A slow apply is submitted to the first; once
it is under way the first agent is SIGKILLed, and the second agent's ``GET /api/v1/agents`` is
polled every 50 ms until it shows the command under its own lease. The budget (issue 16) is 10 s;
the design bound is the lease plus one renewal interval (8 s). The command must then end in
Success with every resource once in the cloud, or the figure is not reported as met.
"""

from __future__ import annotations

import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from formae_fake_aws.cloud import read_cloud

from bench.agent_runs import install_fake_aws
from bench.budgets import Row, at_most, skipped
from bench.report import StoreContext
from formae.testing import AgentProcess, wait_until

FAKE_AWS = Path(sys.executable).parent / "fake-aws-plugin"
BUDGET_S = 10.0
FIGURE = "takeover after the SIGKILL of the agent running a command (2 agents, one PostgreSQL)"
RESOURCES = 100
RATE = "50"
"""fake-aws's announced rate: 100 creates and their polls take about 8 s, so the kill lands mid-apply."""


def rows(quick: bool) -> list[Row]:
    runs = 1 if quick else 5
    try:
        seconds = [_in_a_fresh_schema(run) for run in range(runs)]
    except OSError as error:  # PostgreSQL unreachable
        return [skipped(FIGURE, f"≤ {BUDGET_S:g} s", f"PostgreSQL: {error}")]
    ok = all(s is not None for s in seconds)
    measured = [s for s in seconds if s is not None]
    if not measured:
        return [skipped(FIGURE, f"≤ {BUDGET_S:g} s", "no takeover ended in Success")]
    worst, median = max(measured), statistics.median(measured)
    note = f"median {median:.1f} s of {runs}; lease 6 s, renewed every 2 s"
    row = at_most(f"{FIGURE}, worst of {runs}", worst, BUDGET_S, " s", 1, note)
    return [
        row if ok else Row(row.figure, row.measured, row.budget, False, "a command did not end in Success")
    ]


def _in_a_fresh_schema(run: int) -> float | None:
    with StoreContext("postgres") as url:
        assert url is not None
        return _one(url, run)


def _one(url: str, run: int) -> float | None:
    """One takeover, in seconds; None when the command did not end cleanly."""
    with tempfile.TemporaryDirectory(prefix=f"formae-bench-takeover-{run}-") as root:
        cloud = Path(root) / "cloud.db"
        first, second = (_agent(Path(root) / name, url, cloud) for name in ("first", "second"))
        try:
            return _killed_and_taken_over(first, second, cloud)
        finally:
            for agent in (first, second):
                agent.cleanup()


def _agent(home: Path, url: str, cloud: Path) -> AgentProcess:
    install_fake_aws(home, FAKE_AWS)
    env = {
        "FORMAE_LOG_LEVEL": "WARNING",
        "FAKE_AWS_STATE_FILE": str(cloud),
        "FAKE_AWS_RATE_LIMIT": RATE,
        "FORMAE_SYNC_INTERVAL": "0",
    }
    agent = AgentProcess(home, env=env, store_url=url).start(timeout=60)
    wait_until(lambda: agent.plugins() and agent.plugins()[0]["healthy"], 30, "fake-aws to register")
    return agent


def _killed_and_taken_over(first: AgentProcess, second: AgentProcess, cloud: Path) -> float | None:
    with first.client() as client:
        command_id = str(client.apply(_forma(), "reconcile", False, False, "bench")["command_id"])
    wait_until(lambda: _held_by(first, command_id, first.pid), 30, "the first agent to run the command")
    wait_until(lambda: _succeeded(first, command_id) >= 20, 60, "the apply to be under way")
    first.signal(signal.SIGKILL)
    killed = time.monotonic()
    assert first.process is not None
    first.process.wait(10)
    wait_until(lambda: _held_by(second, command_id, second.pid), 60, "the second agent to take over", 0.05)
    taken = time.monotonic() - killed
    with second.client() as client:
        final = wait_until(lambda: _final(client.command(command_id, updates=False)), 300, "the command")
    names = Counter(str(r.properties["BucketName"]) for r in read_cloud(cloud).values())
    clean = final["state"] == "Success" and len(names) == RESOURCES and max(names.values()) == 1
    return taken if clean else None


def _held_by(agent: AgentProcess, command_id: str, pid: int) -> bool:
    with agent.client() as client:
        rows = client.agents()["agents"]
    return any(
        r["pid"] == pid and r["alive"] and any(c["command_id"] == command_id for c in r["commands"])
        for r in rows
    )


def _succeeded(agent: AgentProcess, command_id: str) -> int:
    with agent.client() as client:
        return int(client.command(command_id, updates=False)["summary"].get("Success", 0))


def _final(command: dict[str, Any]) -> dict[str, Any] | None:
    return command if command["state"] in ("Success", "Failed", "Canceled") else None


def _forma() -> dict[str, Any]:
    """Each create answers InProgress three times: four calls at the announced rate."""
    return {
        "stacks": [{"label": "takeover"}],
        "targets": [{"label": "local", "namespace": "FakeAWS", "config": {}}],
        "resources": [
            {
                "label": f"b{i}",
                "type": "FakeAWS::S3::Bucket",
                "stack": "takeover",
                "target": "local",
                "properties": {"BucketName": f"takeover-{i}", "FakeInProgressPolls": 3},
            }
            for i in range(RESOURCES)
        ],
    }
