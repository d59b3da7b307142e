"""The formae command against a real agent: exit codes scripts can trust, output they can parse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.harness import AgentUnderTest, network_forma

pytestmark = pytest.mark.timeout(90)

FORMAE = Path(sys.executable).parent / "formae"


def formae(
    agent: AgentUnderTest | None, *args: str, api_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **(agent.cli_env() if agent else {}),
        "FORMAE_API_URL": api_url or (agent.runtime["api_url"] if agent else ""),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [str(FORMAE), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def write(tmp_path: Path, name: str, forma: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(forma) if name.endswith(".yaml") else json.dumps(forma))
    return path


def test_a_watched_apply_exits_0_and_its_status_is_machine_readable(
    agent: AgentUnderTest, tmp_path: Path
) -> None:
    applied = formae(agent, "apply", "--watch", str(write(tmp_path, "net.yaml", network_forma())))

    assert applied.returncode == 0, applied.stderr
    assert "Success" in applied.stdout
    [latest] = json.loads(formae(agent, "status", "command", "-o", "json").stdout)
    status = json.loads(formae(agent, "status", "command", latest["id"], "-o", "json").stdout)
    assert status["state"] == "Success"
    assert sorted(u["label"] for u in status["updates"]) == ["bucket", "subnet", "vpc"]
    as_yaml = yaml.safe_load(formae(agent, "status", "command", latest["id"], "-o", "yaml").stdout)
    assert as_yaml["id"] == latest["id"]
    vpcs = json.loads(
        formae(agent, "inventory", "resources", "--query", "type:FakeAWS::EC2::*", "-o", "json").stdout
    )
    assert sorted(r["label"] for r in vpcs) == ["subnet", "vpc"]
    [plugin] = json.loads(formae(agent, "plugin", "list", "-o", "json").stdout)
    assert plugin["namespace"] == "FakeAWS"
    assert agent.cookie not in applied.stdout + json.dumps(status) + json.dumps(plugin)


def test_a_failed_apply_exits_1(agent: AgentUnderTest, tmp_path: Path) -> None:
    forma = network_forma(bucket={"FakeFailWith": "AccessDenied"})

    applied = formae(agent, "apply", "--watch", str(write(tmp_path, "net.json", forma)))

    assert applied.returncode == 1
    assert "AccessDenied" in applied.stdout


def test_an_invalid_forma_exits_3_naming_file_resource_and_field(
    agent: AgentUnderTest, tmp_path: Path
) -> None:
    forma = network_forma()
    forma["resources"][0]["type"] = "nonsense"

    applied = formae(agent, "apply", str(write(tmp_path, "broken.yaml", forma)))

    assert applied.returncode == 3
    assert 'broken.yaml: resource "vpc": type' in applied.stderr


def test_a_namespace_without_plugin_exits_3(agent: AgentUnderTest, tmp_path: Path) -> None:
    forma = network_forma()
    forma["targets"].append({"label": "aws", "namespace": "AWS", "config": {}})
    forma["resources"].append({"label": "q", "type": "AWS::SQS::Queue", "stack": "net", "target": "aws"})

    applied = formae(agent, "apply", str(write(tmp_path, "aws.json", forma)))

    assert applied.returncode == 3
    assert "no plugin registered for namespace AWS (registered: FakeAWS)" in applied.stderr


def test_a_reconcile_over_out_of_band_changes_exits_3_until_forced(
    agent: AgentUnderTest, tmp_path: Path
) -> None:
    path = write(tmp_path, "net.json", network_forma())
    assert formae(agent, "apply", "--watch", str(path)).returncode == 0
    extra = network_forma()
    extra["resources"] = [
        {
            "label": "logs",
            "type": "FakeAWS::S3::Bucket",
            "stack": "net",
            "target": "local",
            "properties": {"BucketName": "logs"},
        }
    ]
    assert (
        formae(agent, "apply", "--watch", "--mode", "patch", str(write(tmp_path, "p.json", extra))).returncode
        == 0
    )

    refused = formae(agent, "apply", str(path))
    forced = formae(agent, "apply", "--watch", "--force", str(path))

    assert refused.returncode == 3
    assert "changed out of band" in refused.stderr
    assert forced.returncode == 0


def test_simulate_prints_the_plan_and_changes_nothing(agent: AgentUnderTest, tmp_path: Path) -> None:
    planned = formae(
        agent, "apply", "--simulate", "-o", "json", str(write(tmp_path, "n.json", network_forma()))
    )

    assert planned.returncode == 0
    assert json.loads(planned.stdout)["summary"]["create"] == 3
    assert agent.cloud() == {}


def test_no_agent_exits_4(tmp_path: Path) -> None:
    listed = formae(None, "plugin", "list", api_url="http://127.0.0.1:9")

    assert listed.returncode == 4
    assert "cannot reach the formae agent" in listed.stderr


def test_bad_usage_exits_2(agent: AgentUnderTest, tmp_path: Path) -> None:
    used = formae(agent, "apply", "--mode", "sideways", str(write(tmp_path, "n.json", network_forma())))

    assert used.returncode == 2


def test_a_large_apply_is_followed_by_its_counts_and_shows_only_what_failed(
    agent: AgentUnderTest, tmp_path: Path
) -> None:
    forma = network_forma()
    forma["resources"] = [
        {
            "label": f"b{i}",
            "type": "FakeAWS::S3::Bucket",
            "stack": "net",
            "target": "local",
            "properties": {"BucketName": f"big-{i}", **({"FakeFailWith": "AccessDenied"} if i == 7 else {})},
        }
        for i in range(150)
    ]

    applied = formae(agent, "apply", "--watch", str(write(tmp_path, "big.json", forma)))

    assert applied.returncode == 1
    assert "Success" in applied.stdout
    assert "149" in applied.stdout  # the count of successes, not 149 rows
    assert "net/b7" in applied.stdout
    assert "AccessDenied" in applied.stdout
    assert "net/b8 " not in applied.stdout
