"""Measurements that need a whole agent: apply and destroy wall time, peak RSS, liveness."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import workload
from bench.cli_runs import run_cli
from formae.cli.client import AgentClient
from formae.testing import AgentProcess, wait_until

FAKE_AWS_INSTALL = ("fake-aws", "1.0.0")
SUBMIT_TIMEOUT = 900.0


@dataclass(frozen=True)
class ApplyRun:
    resources: int
    apply_seconds: float
    destroy_seconds: float
    peak_rss_mb: float
    failed: int
    simulate_api_seconds: float = float("nan")
    """A no-op reconcile of the same forma against the inventory it made: REST submit to answer."""
    simulate_cli_seconds: float = float("nan")
    """The same, end to end: ``formae apply FILE --simulate`` timed as a whole process."""


def install_fake_aws(home: Path, executable: Path) -> None:
    name, version = FAKE_AWS_INSTALL
    target = home / "plugins" / name / f"v{version}" / f"{name}-plugin"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(executable.read_bytes())
    target.chmod(0o755)


def start_agent(
    home: Path, store_url: str | None, fake_aws: Path, *, plugin_tls: bool = True
) -> AgentProcess:
    install_fake_aws(home, fake_aws)
    env = {"FORMAE_LOG_LEVEL": "WARNING", "FAKE_AWS_STATE_FILE": ":memory:"}
    agent = AgentProcess(home, env=env, store_url=store_url, plugin_tls=plugin_tls).start()
    wait_until(lambda: agent.plugins() and agent.plugins()[0]["healthy"], 30, "fake-aws to register")
    return agent


def client(agent: AgentProcess) -> AgentClient:
    """A client that waits as long as submitting 100,000 resources takes."""
    return AgentClient(agent.runtime["api_url"], SUBMIT_TIMEOUT, token=agent.api_token, ca=agent.api_ca)


def apply_and_destroy(agent: AgentProcess, forma: dict[str, Any]) -> ApplyRun:
    """Apply, then simulate the same forma again (a no-op reconcile, by API and by CLI), then destroy."""
    count = len(forma["resources"])
    path = agent.home / "bench-forma.json"
    path.write_text(json.dumps(forma), encoding="utf-8")
    with client(agent) as api:
        started = time.perf_counter()
        submitted = api.apply(forma, "reconcile", False, False, "bench")
        applied = _wait(api, submitted["command_id"])
        apply_seconds = time.perf_counter() - started
        rss = peak_rss_mb(agent.pid)
        simulate_api, simulate_cli = simulate_seconds(agent, api, forma, path)
        started = time.perf_counter()
        submitted = api.destroy(None, "stack:bench", False, "bench")
        destroyed = _wait(api, submitted["command_id"])
        destroy_seconds = time.perf_counter() - started
    failed = sum(c["summary"].get("Failed", 0) for c in (applied, destroyed))  # counts by state
    return ApplyRun(count, apply_seconds, destroy_seconds, rss, failed, simulate_api, simulate_cli)


def simulate_seconds(
    agent: AgentProcess, api: AgentClient, forma: dict[str, Any], path: Path
) -> tuple[float, float]:
    """A no-op reconcile simulated: by the REST API, then by the CLI as a whole process."""
    started = time.perf_counter()
    plan = api.apply(forma, "reconcile", True, False, "bench")
    by_api = time.perf_counter() - started
    if plan["changes"]:
        raise RuntimeError("simulating the forma just applied planned changes: the bench is not a no-op")
    return by_api, run_cli(agent, "apply", str(path), "--simulate").seconds


def _wait(client: Any, command_id: str) -> dict[str, Any]:
    """The command once final: a long poll, so measuring adds no load to the agent."""
    while True:
        command: dict[str, Any] = client.command(command_id, updates=False, wait=60)
        if command["state"] in ("Success", "Failed", "Canceled"):
            return command


def small_apply_seconds(agent: AgentProcess, runs: int) -> list[float]:
    """The seed's three-resource apply, submitted to the REST API until the agent reports Success."""
    samples = []
    with agent.client() as client:
        for run in range(runs):
            started = time.perf_counter()
            submitted = client.apply(workload.network(f"small-{run}"), "reconcile", False, False, "bench")
            if _wait(client, submitted["command_id"])["state"] != "Success":
                raise RuntimeError(f"the three-resource apply {submitted['command_id']} did not succeed")
            samples.append(time.perf_counter() - started)
    return samples


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def time_to_notice_local_death(agent: AgentProcess) -> float:
    """SIGKILL the spawned plugin; seconds until the agent reports it unhealthy."""
    [plugin] = agent.plugins()
    killed = time.perf_counter()
    os.kill(plugin["pid"], signal.SIGKILL)
    return _until_unhealthy(agent, plugin["node"], killed)


def time_to_notice_remote_death(agent: AgentProcess, fake_aws: Path, how: signal.Signals) -> float:
    """A plugin started by hand (as on another host) dies: SIGKILL closes its connection,
    SIGSTOP freezes it with the connection open, as a host that vanished would. Seconds to notice."""
    with agent.client() as client:
        token = client.create_join_token(["FakeAWS"], 600, None)["token"]
    node = f"fake-aws@remote-{how.name}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FORMAE_")},
        "FORMAE_AGENT_NODE": agent.runtime["plugin_address"],
        "FORMAE_PLUGIN_NODE": node,
        "FORMAE_JOIN_TOKEN": token,
        "FORMAE_PLUGIN_STATE_DIR": str(agent.home / f"remote-{how.name}"),
        "FORMAE_LOG_LEVEL": "WARNING",
    }
    plugin = subprocess.Popen([str(fake_aws)], env=env, stdin=subprocess.DEVNULL)
    try:
        wait_until(
            lambda: any(p["node"] == node and p["healthy"] for p in agent.plugins()),
            15,
            "the remote plugin to register",
        )
        stopped = time.perf_counter()
        plugin.send_signal(how)
        return _until_unhealthy(agent, node, stopped)
    finally:
        plugin.kill()
        plugin.wait()


def _until_unhealthy(agent: AgentProcess, node: str, since: float) -> float:
    with agent.client() as client:
        while True:
            plugins = {p["node"]: p for p in client.plugins()}
            if not plugins[node]["healthy"]:
                return time.perf_counter() - since
            time.sleep(0.002)
