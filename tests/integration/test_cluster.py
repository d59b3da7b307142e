"""Three agents over one PostgreSQL database: submit anywhere, take over a dead agent's work, move the leader.

Every agent has its own home and its own fake-aws child, and all three plugins keep one fake cloud
(the first agent's file), so what is counted at the end is the cloud itself against the inventory.
Leases are shortened (3 s, renewed every second) so that takeovers fit the suite's budget; the
default timings are measured by ``python -m bench``.
"""

from __future__ import annotations

import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from formae_fake_aws.cloud import read_cloud

from formae.cli.client import Rejected
from formae.testing import wait_until
from tests.integration.conftest import MakeAgent
from tests.integration.harness import AgentUnderTest, install_fake_aws, network_forma

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

LEASES = {"FORMAE_COMMAND_LEASE": "3", "FORMAE_LEASE_RENEW_INTERVAL": "1"}


class Cluster:
    """Three agents on one store and one fake cloud; ``restart`` brings a killed one back."""

    def __init__(self, make_agent: MakeAgent, root: Path, url: str, **env: str) -> None:
        self._make, self._url = make_agent, url
        self.cloud_file = root / "cloud.db"
        self._env = {**LEASES, "FAKE_AWS_STATE_FILE": str(self.cloud_file), **env}
        self.agents = [self._start(root / f"agent-{n}") for n in range(3)]

    def _start(self, home: Path) -> AgentUnderTest:
        if not (home / "plugins").exists():
            install_fake_aws(home)
        agent = self._make(home, store_url=self._url, env=dict(self._env))
        agent.start(timeout=60)
        agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=30)
        return agent

    def restart(self, agent: AgentUnderTest) -> AgentUnderTest:
        fresh = self._start(agent.home)
        self.agents[self.agents.index(agent)] = fresh
        return fresh

    def view(self, via: AgentUnderTest | None = None) -> dict[str, Any]:
        """``GET /api/v1/agents`` of ``via``, or of the first agent running."""
        if via is not None:
            with via.client() as client:
                return client.agents()
        for agent in self.agents:
            if agent.process is not None and agent.process.poll() is None:
                with agent.client() as client:
                    return client.agents()
        raise AssertionError("no agent is running")

    def holder(self, command_id: str, via: AgentUnderTest | None = None) -> AgentUnderTest | None:
        """The agent whose lease the command is under, if a live one holds it."""
        for row in self.view(via)["agents"]:
            if row["alive"] and any(c["command_id"] == command_id for c in row["commands"]):
                return next((a for a in self.agents if a.pid == row["pid"]), None)
        return None

    def leader(self) -> AgentUnderTest | None:
        rows = [row for row in self.view()["agents"] if row["alive"] and row["leader"]]
        return next((a for a in self.agents if rows and a.pid == rows[0]["pid"]), None)

    def live(self) -> list[AgentUnderTest]:
        return [a for a in self.agents if a.process is not None and a.process.poll() is None]


def _buckets(stack: str, count: int, **extra: Any) -> dict[str, Any]:
    return {
        "stacks": [{"label": stack}],
        "targets": [{"label": "local", "namespace": "FakeAWS", "config": {}}],
        "resources": [
            {
                "label": f"b{i}",
                "type": "FakeAWS::S3::Bucket",
                "stack": stack,
                "target": "local",
                "properties": {"BucketName": f"{stack}-{i}", **extra},
            }
            for i in range(count)
        ],
    }


def _summary(agent: AgentUnderTest, command_id: str) -> tuple[int, str]:
    with agent.client() as client:
        command = client.command(command_id, updates=False)
    finished = sum(n for state, n in command["summary"].items() if state in ("Success", "Failed", "Canceled"))
    return finished, str(command["state"])


def _count(agent: AgentUnderTest, cloud_file: Path) -> tuple[Counter[str], set[str], set[str]]:
    cloud = read_cloud(cloud_file).values()
    with agent.client() as client:
        managed = {r["native_id"] for r in client.inventory("resources")}
    return Counter(str(r.properties["BucketName"]) for r in cloud), {r.native_id for r in cloud}, managed


def test_commands_submitted_to_each_agent_show_everywhere_and_conflict_across_agents(
    make_agent: MakeAgent, postgres_url: str, tmp_path: Path
) -> None:
    cluster = Cluster(make_agent, tmp_path, postgres_url)
    a, b, c = cluster.agents
    ids = [agent.apply(network_forma(stack=f"s{n}"))["command_id"] for n, agent in enumerate(cluster.agents)]
    for n, command_id in enumerate(ids):  # each followed through another agent's API
        assert cluster.agents[(n + 1) % 3].wait_command(command_id, 60)["state"] == "Success"

    slow = a.apply(network_forma(stack="slow", vpc={"FakeDelayMs": 4000}))["command_id"]
    with pytest.raises(Rejected) as refused:
        b.apply(network_forma(stack="slow"))
    with c.client() as client:
        queued = client.apply(network_forma(stack="slow"), "reconcile", False, False, "test", queue=True)
    view = cluster.view()

    assert refused.value.status == 409
    assert f"command {slow} is changing stack 'slow'" in str(refused.value.problems)
    assert queued["queued_behind"] == [slow]
    assert sorted(row["alive"] for row in view["agents"]) == [True, True, True]
    assert sum(row["leader"] for row in view["agents"]) == 1
    assert [row["commands"][0]["command_id"] for row in view["agents"] if row["pid"] == a.pid] == [slow]
    assert b.wait_command(slow, 60)["state"] == "Success"
    assert a.wait_command(queued["command_id"], 60)["state"] == "Success"
    with c.client() as client:
        managed = {r["native_id"] for r in client.inventory("resources")}
    assert len(read_cloud(cluster.cloud_file)) == 12  # s0, s1, s2 and slow: 3 resources each
    assert set(read_cloud(cluster.cloud_file)) == managed


RESOURCES = 2000
KILLS = 5
STEP = 50
"""Updates that finish between two kills: every kill lands while the command runs."""


def test_five_kills_of_the_agent_running_a_2000_resource_apply_lose_and_duplicate_nothing(
    make_agent: MakeAgent, postgres_url: str, tmp_path: Path
) -> None:
    # fake-aws's rate makes the 4,000 calls (each create is throttled once) last ~25 s whoever runs them
    cluster = Cluster(make_agent, tmp_path, postgres_url, FAKE_AWS_RATE_LIMIT="150")
    forma = _buckets("storm", RESOURCES, FakeFailWith="Throttling", FakeFailTimes=1)
    command_id = cluster.agents[1].apply(forma)["command_id"]
    kills = 0
    with ThreadPoolExecutor(KILLS) as restarts:  # restarted beside the storm: it does not wait for them
        restarted = []
        while kills < KILLS:
            watcher = wait_until(lambda: _answering(cluster), 60, "an agent to answer")
            finished, state = _summary(watcher, command_id)
            if state not in ("Pending", "InProgress"):
                break
            wait_until(
                partial(_moved_on, watcher, command_id, finished), 120, f"progress before kill {kills}"
            )
            holder = wait_until(partial(cluster.holder, command_id, watcher), 60, "an agent to hold it")
            holder.signal(signal.SIGKILL)
            assert holder.process is not None
            holder.process.wait(10)
            kills += 1
            restarted.append(restarts.submit(cluster.restart, holder))
        for restart in restarted:
            restart.result()

    final = cluster.live()[0].wait_command(command_id, timeout=240)
    assert final["state"] == "Success", final["message"]
    assert kills == KILLS, "the apply ended before every kill landed"
    names, in_cloud, managed = _count(cluster.agents[0], cluster.cloud_file)
    assert len(names) == RESOURCES  # 0 lost
    assert max(names.values()) == 1  # 0 duplicated
    assert in_cloud == managed  # 0 orphaned
    assert (
        sum(
            a.log_count(rf"taking over command {command_id}|resuming command {command_id}")
            for a in cluster.agents
        )
        >= KILLS
    )


def _answering(cluster: Cluster) -> AgentUnderTest | None:
    """An agent that is up (not being restarted): the one to ask."""
    live = cluster.live()
    return live[0] if live else None


def _moved_on(agent: AgentUnderTest, command_id: str, since: int) -> bool:
    finished, state = _summary(agent, command_id)
    return finished >= since + STEP or state not in ("Pending", "InProgress")


SYNCED = 150


def test_a_sync_whose_leader_is_killed_is_continued_by_the_next_leader(
    make_agent: MakeAgent, postgres_url: str, tmp_path: Path
) -> None:
    cluster = Cluster(make_agent, tmp_path, postgres_url, FAKE_AWS_RATE_LIMIT="25", FORMAE_SYNC_INTERVAL="0")
    applied = cluster.agents[0].apply(_buckets("synced", SYNCED))["command_id"]
    assert cluster.agents[0].wait_command(applied, 60)["state"] == "Success"
    leader = wait_until(cluster.leader, 30, "a leader")
    with leader.client() as client:
        run = client.request("POST", "/sync", json={"query": "stack:synced"})
    survivor = next(a for a in cluster.agents if a is not leader)
    wait_until(partial(_checkpointed, survivor, run["id"]), 60, "the sync to have stored a checkpoint")

    leader.signal(signal.SIGKILL)
    assert leader.process is not None
    leader.process.wait(10)
    with survivor.client() as client:
        done = wait_until(lambda: _ended(client.request("GET", f"/sync/{run['id']}")), 90, "the sync to end")
    successor = wait_until(cluster.leader, 30, "a new leader")

    assert done["state"] == "Success", done
    assert done["total"] == SYNCED
    assert sum(done["counts"].values()) == SYNCED, "each resource counted once"
    assert successor is not leader
    assert successor.log_count(rf"continuing sync {run['id']} from ") == 1


def _checkpointed(other: AgentUnderTest, run_id: str) -> bool:
    """Another agent reads the run from the store: what is there is the checkpoint's prefix."""
    with other.client() as client:
        try:
            run = client.request("GET", f"/sync/{run_id}")
        except Rejected:  # not stored yet
            return False
    return bool(sum(run["counts"].values()) >= 50 and run["state"] == "Running")


def _ended(run: dict[str, Any]) -> dict[str, Any] | None:
    return run if run["state"] in ("Success", "Failed") else None


PAUSED = 600


@pytest.mark.skip(
    reason="issue 16, open: it fails about 1 run in 4, either with no takeover within 30 s of the SIGSTOP "
    "or with buckets in the cloud the inventory lacks (orphans: a paused agent's late create got through)"
)
def test_a_paused_agent_that_lost_its_lease_writes_nothing_over_the_agent_that_took_over(
    make_agent: MakeAgent, postgres_url: str, tmp_path: Path
) -> None:
    """SIGSTOP past the lease: another agent takes the command over; on SIGCONT the paused agent's
    late writes are fenced out (their lease generation is stale) and it stops the command itself."""
    cluster = Cluster(make_agent, tmp_path, postgres_url)
    forma = _buckets("paused", PAUSED, FakeInProgressPolls=2)
    command_id = cluster.agents[0].apply(forma)["command_id"]
    wait_until(partial(_moved_on, cluster.agents[0], command_id, 0), 60, "the apply to be under way")
    paused = wait_until(partial(cluster.holder, command_id), 30, "an agent to hold the command")
    watcher = next(a for a in cluster.agents if a is not paused)
    paused.signal(signal.SIGSTOP)
    try:
        other = wait_until(partial(_held_by_other, cluster, command_id, paused, watcher), 30, "a takeover")
    finally:
        paused.signal(signal.SIGCONT)

    final = watcher.wait_command(command_id, timeout=120)
    errors = Counter(f"{u['error_code']}: {u['error']}" for u in final["updates"] if u["state"] != "Success")
    assert final["state"] == "Success", (final["message"], errors.most_common(3))
    assert other is not paused
    paused.wait_for_log(rf"lost the lease of commands \['{command_id}'\]", timeout=15)
    names, in_cloud, managed = _count(watcher, cluster.cloud_file)
    assert len(names) == PAUSED  # 0 lost
    assert max(names.values()) == 1  # 0 duplicated
    assert in_cloud == managed  # 0 orphaned


def _held_by_other(
    cluster: Cluster, command_id: str, paused: AgentUnderTest, via: AgentUnderTest
) -> AgentUnderTest | None:
    holder = cluster.holder(command_id, via)
    return holder if holder is not None and holder is not paused else None
