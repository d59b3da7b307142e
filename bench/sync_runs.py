"""The synchronizer's figures: a sync of N managed resources against the same reads over the wire,
and what a sync running meanwhile does to the latency of a 100-resource apply.

The limit is N ``Read`` calls sent straight over the agent's own hub and plugin link to a real
fake-aws process, with the synchronizer's concurrency (64 in flight), after the same resources
were created there: no datastore, no comparison, no registry lookups. The sync is ``POST
/api/v1/sync`` to its end through a real agent that applied the N resources first.
"""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import agent_runs, transport, workload
from bench.hub import running_hub
from formae.agent.plugin_link import PluginLink
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import PluginRegistry
from formae.model import resolve_references
from formae.testing import AgentProcess, wait_until
from formae.wire.types import CreateRequest, ReadRequest, TargetInfo

KEPT_LOG = Path(tempfile.gettempdir()) / "formae-bench-sync-agent.log"
SYNC_IN_FLIGHT = 64  # the synchronizer's own bound
LATENCY_SIZE = 100
LATENCY_RUNS = 3


@dataclass(frozen=True)
class SyncFigures:
    resources: int
    sync_seconds: float
    limit_seconds: float
    apply_alone_seconds: float
    """Median of the 100-resource apply with nothing else running."""
    apply_during_sync_seconds: float
    """Median of the same apply while the sync runs."""
    sync_still_running: bool
    """Whether every measured apply ended before the sync did (else the comparison is weaker)."""

    @property
    def sync_ratio(self) -> float:
        return self.sync_seconds / self.limit_seconds

    @property
    def latency_ratio(self) -> float:
        return self.apply_during_sync_seconds / self.apply_alone_seconds


def measure(
    size: int, fake_aws: Path, home: Path, store_url: str | None, *, latency_runs: int = LATENCY_RUNS
) -> SyncFigures:
    forma = workload.forma(size)
    limit = asyncio.run(read_limit(forma, fake_aws))
    agent = _start_agent(home, store_url, fake_aws)
    try:
        with agent.client() as client:
            applied = _wait(client, client.apply(forma, "reconcile", False, False, "bench")["command_id"])
            if applied["state"] != "Success":
                raise RuntimeError(f"the {size}-resource apply did not succeed: {applied['message']}")
            started = time.perf_counter()
            run = _sync_to_end(client, client.request("POST", "/sync", json={"query": ""}))
            synced = time.perf_counter() - started
            alone = [_apply_and_destroy(agent, i) for i in range(latency_runs)]
            second = client.request("POST", "/sync", json={"query": ""})
            during = [_apply_and_destroy(agent, latency_runs + i) for i in range(latency_runs)]
            running = client.request("GET", f"/sync/{second['id']}")["state"] in ("Queued", "Running")
            _sync_to_end(client, second)
        if run["state"] != "Success" or run["counts"]["unchanged"] != len(forma["resources"]):
            raise RuntimeError(f"the benchmark's sync did not read everything unchanged: {json.dumps(run)}")
    except BaseException:
        shutil.copy(agent.log_path, KEPT_LOG)  # the temporary home goes with the failure
        print(f"the agent's log is kept in {KEPT_LOG}", file=sys.stderr)
        raise
    finally:
        try:
            agent.stop()
        finally:
            agent.cleanup()
    return SyncFigures(
        len(forma["resources"]), synced, limit, statistics.median(alone), statistics.median(during), running
    )


async def read_limit(forma: dict[str, Any], fake_aws: Path, in_flight: int = SYNC_IN_FLIGHT) -> float:
    """Seconds to read every resource of ``forma`` straight over the wire, once they exist."""
    registry = PluginRegistry(RateLimiter())
    async with running_hub(registry, "fake-aws@sync-limit", tls=True) as hub:
        env = {**hub.child_env, "FORMAE_HEARTBEAT_INTERVAL": "3"}  # as patient as the agent run's plugin
        child = await asyncio.create_subprocess_exec(str(fake_aws), env=env, stdin=asyncio.subprocess.DEVNULL)
        try:
            link = await registry.wait_for("FakeAWS", 30)
            target = TargetInfo("bench", "FakeAWS", forma["targets"][0]["config"])
            ids = await _create(link, forma, target)
            reads = [ReadRequest(r["type"], ids[r["label"]], target) for r in forma["resources"]]
            started = time.perf_counter()
            await transport._run(link, list(reads), in_flight)
            return time.perf_counter() - started
        finally:
            child.terminate()
            await child.wait()


async def _create(link: PluginLink, forma: dict[str, Any], target: TargetInfo) -> dict[str, str]:
    ids: dict[str, str] = {}
    for subnets in (False, True):
        wave = [r for r in forma["resources"] if (r["type"] == "FakeAWS::EC2::Subnet") is subnets]
        requests = [
            CreateRequest(
                r["type"], r["label"], resolve_references(r["properties"], lambda ref: ids[ref.label]), target
            )
            for r in wave
        ]
        results = await transport._run(link, list(requests), transport.IN_FLIGHT)
        ids.update({r["label"]: result.native_id for r, result in zip(wave, results, strict=True)})
    return ids


def _start_agent(home: Path, store_url: str | None, fake_aws: Path) -> AgentProcess:
    """As the other benchmarks start theirs, with heartbeats that a loaded machine cannot trip either way.

    The cloud is in the plugin's memory: a plugin taken for dead and restarted would lose it.
    """
    agent_runs.install_fake_aws(home, fake_aws)
    env = {
        "FORMAE_LOG_LEVEL": "WARNING",
        "FAKE_AWS_STATE_FILE": ":memory:",
        "FORMAE_HEARTBEAT_TIMEOUT": "30",
        "FORMAE_HEARTBEAT_INTERVAL": "3",  # the plugin's patience with a busy agent grows with it
    }
    agent = AgentProcess(home, env=env, store_url=store_url)
    try:
        agent.start(timeout=60)
        wait_until(lambda: agent.plugins() and agent.plugins()[0]["healthy"], 60, "fake-aws to register")
    except BaseException:
        agent.cleanup()  # no agent left running when it started too slowly
        raise
    return agent


def _apply_and_destroy(agent: AgentProcess, run: int) -> float:
    """Seconds from submitting a 100-resource apply to its Success; then it is destroyed again."""
    forma = _restacked(workload.forma(LATENCY_SIZE), f"latency-{run}")
    with agent.client() as client:
        started = time.perf_counter()
        command = _wait(client, client.apply(forma, "reconcile", False, False, "bench")["command_id"])
        elapsed = time.perf_counter() - started
        if command["state"] != "Success":
            raise RuntimeError(f"the latency apply {command['id']} did not succeed")
        _wait(client, client.destroy(None, f"stack:latency-{run}", False, "bench")["command_id"])
    return elapsed


def _restacked(forma: dict[str, Any], stack: str) -> dict[str, Any]:
    """The workload in another stack, with its own bucket names (they are unique in the cloud)."""
    text = json.dumps(forma).replace(f'"{workload.STACK}"', json.dumps(stack))
    moved: dict[str, Any] = json.loads(text.replace('"bench-', f'"{stack}-'))
    return copy.deepcopy(moved)


def _sync_to_end(client: Any, run: dict[str, Any]) -> dict[str, Any]:
    while run["state"] not in ("Success", "Failed"):
        run = client.request("GET", f"/sync/{run['id']}", params={"wait": 60}, timeout=90)
    return run


def _wait(client: Any, command_id: str) -> dict[str, Any]:
    while True:
        command: dict[str, Any] = client.command(command_id, updates=False, wait=60)
        if command["state"] in ("Success", "Failed", "Canceled"):
            return command
