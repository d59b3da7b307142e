"""Metrics of a real agent: ``/metrics`` scraped while fake-aws applies; ``/api/v1/stats``; ``status agent``.

Every metric is real: a real agent process, fake-aws spawned by it, its store on disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import MakeAgent
from tests.integration.harness import AgentUnderTest

pytestmark = pytest.mark.timeout(120)

BUCKETS = 40


def buckets_forma() -> dict[str, Any]:
    resources: list[dict[str, Any]] = [
        {
            "label": f"b{i}",
            "type": "FakeAWS::S3::Bucket",
            "stack": "m",
            "target": "local",
            "properties": {"BucketName": f"metrics-{i}", "FakeDelayMs": 40},
        }
        for i in range(BUCKETS)
    ]
    resources[0]["properties"] |= {"FakeFailWith": "Throttling", "FakeFailTimes": 1}
    resources[1]["properties"] |= {"FakeInProgressPolls": 2}
    return {
        "stacks": [{"label": "m"}],
        "targets": [{"label": "local", "namespace": "FakeAWS", "config": {"region": "us-east-1"}}],
        "resources": resources,
    }


def scrape(agent: AgentUnderTest, token: str | None = None) -> httpx.Response:
    """``/metrics`` with the agent's token (``token=""``: none); the API is plain HTTP on loopback."""
    url = agent.runtime["api_url"] + "/metrics"
    headers = {"authorization": f"Bearer {token or agent.api_token}"} if token != "" else {}
    return httpx.get(url, headers=headers, timeout=10)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= ls)


@pytest.fixture
def limited_agent(agent_home: Path, make_agent: MakeAgent) -> AgentUnderTest:
    """fake-aws announcing 20 operations a second: a 40-bucket apply takes 2 s, waiting for tokens."""
    running = make_agent(agent_home, env={"FAKE_AWS_RATE_LIMIT": "20"}).start()
    running.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
    return running


def test_metrics_scraped_during_an_apply_move_and_parse(limited_agent: AgentUnderTest) -> None:
    agent = limited_agent
    before = samples(scrape(agent).text)
    seen: list[float] = []
    stop = threading.Event()

    def scrape_until_stopped() -> None:
        while not stop.is_set():
            text = scrape(agent).text
            seen.append(value(samples(text), "formae_plugin_call_duration_seconds_count", operation="create"))
            time.sleep(0.05)

    scraper = threading.Thread(target=scrape_until_stopped)
    scraper.start()
    try:
        command = agent.apply_and_wait(buckets_forma(), timeout=60)
    finally:
        stop.set()
        scraper.join(timeout=15)
    after = samples(scrape(agent).text)

    assert command["state"] == "Success", command
    assert value(before, "formae_plugin_call_duration_seconds_count") == 0
    assert len(set(seen)) >= 3, f"the create count should move while the apply runs: {seen}"
    assert seen == sorted(seen)
    assert value(after, "formae_plugin_call_duration_seconds_count", operation="create") >= BUCKETS + 1
    assert (
        value(after, "formae_plugin_call_duration_seconds_count", operation="status", result="success") == 1
    )
    assert value(after, "formae_commands_total", kind="apply", state="Success") == 1
    assert value(after, "formae_commands_total", kind="apply", state="InProgress") == 1
    assert value(after, "formae_resource_updates_total", operation="create", state="Success") == BUCKETS
    assert value(after, "formae_retries_total", code="Throttling") == 1
    assert value(after, "formae_rate_limit_waits_total", namespace="FakeAWS") > 0
    assert value(after, "formae_rate_limit_wait_seconds_total", namespace="FakeAWS") > 0
    assert value(after, "formae_plugins", namespace="FakeAWS", health="healthy") == 1
    assert value(after, "formae_datastore_commit_writes_sum") >= BUCKETS * 2
    assert value(after, "formae_datastore_commit_duration_seconds_count") > 0
    assert value(after, "formae_event_loop_lag_seconds_count") > 0


def test_metrics_need_a_token_and_stats_summarise_them(agent: AgentUnderTest) -> None:
    assert scrape(agent, token="").status_code == 401
    assert agent.apply_and_wait(buckets_forma(), timeout=60)["state"] == "Success"

    cli = subprocess.run(
        [sys.executable, "-m", "formae", "status", "agent", "-o", "json"],
        env={**os.environ, **agent.cli_env()},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    stats = json.loads(cli.stdout)["stats"]
    [me] = json.loads(cli.stdout)["cluster"]["agents"]  # the agents sharing the store: this one
    assert (me["pid"], me["alive"], me["leader"], me["commands"]) == (agent.pid, True, True, [])
    assert stats["commands"]["apply"]["Success"] == 1
    assert stats["resource_updates"]["create"]["Success"] == BUCKETS
    assert stats["plugins"] == {"FakeAWS": {"healthy": 1, "unhealthy": 0, "draining": 0}}
    [creates] = [c for c in stats["plugin_calls"] if c["operation"] == "create"]
    assert creates["calls"] == BUCKETS + 1
    assert creates["failures"] == 1
    assert 0.04 <= creates["mean_seconds"] < 5
    assert stats["retries"] == {"Throttling": 1}
    human = subprocess.run(
        [sys.executable, "-m", "formae", "status", "agent"],
        env={**os.environ, **agent.cli_env()},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "commands: apply 1 InProgress, 1 Pending, 1 Success" in human
    assert "retries: 1 Throttling" in human


def test_metrics_off_serves_neither_route(agent_home: Path, make_agent: MakeAgent) -> None:
    agent = make_agent(agent_home, extra_args=["--no-metrics"]).start()

    assert scrape(agent).status_code == 404
    with agent.client() as client, pytest.raises(Exception, match=r"404|Not Found"):
        client.request("GET", "/stats")
