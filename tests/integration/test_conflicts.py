"""Two commands on one stack: the second is refused (409, exit 3) naming the first, or queued with --wait.

Before claims, two applies of one forma both planned from an inventory without the other's creates,
and both created everything: the cloud held every resource twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from formae.cli.client import Rejected
from formae.testing import wait_until
from tests.integration.harness import AgentUnderTest, network_forma

pytestmark = pytest.mark.timeout(120)


def _slow_forma(buckets: int = 20) -> dict[str, Any]:
    forma = network_forma(vpc={"FakeDelayMs": 5000})
    forma["resources"] += [
        {
            "label": f"b{i}",
            "type": "FakeAWS::S3::Bucket",
            "stack": "net",
            "target": "local",
            "properties": {"BucketName": f"bucket-{i}"},
        }
        for i in range(buckets)
    ]
    return forma


def _duplicates(agent: AgentUnderTest) -> dict[str, int]:
    names = Counter(r.properties.get("BucketName") or r.type for r in agent.cloud().values())
    return {name: n for name, n in names.items() if n > 1}


def test_a_second_apply_on_a_running_stack_is_refused_naming_the_first(
    backend_agent: AgentUnderTest, tmp_path: Path
) -> None:
    forma = _slow_forma()
    first = backend_agent.apply(forma)["command_id"]

    with pytest.raises(Rejected) as rejected:
        backend_agent.apply(forma)
    path = tmp_path / "forma.json"
    path.write_text(json.dumps(forma))
    cli = subprocess.run(
        [sys.executable, "-m", "formae", "apply", str(path)],
        env={**os.environ, **backend_agent.cli_env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert rejected.value.status == 409
    assert f"command {first} is changing stack 'net'" in rejected.value.problems[0]
    assert cli.returncode == 3, cli.stderr
    assert first in cli.stderr
    assert backend_agent.wait_command(first)["state"] == "Success"
    assert _duplicates(backend_agent) == {}
    assert len(backend_agent.cloud()) == 23
    with backend_agent.client() as client:
        assert len(client.commands()) == 1  # the refused ones left nothing behind


def test_wait_queues_the_second_command_visibly_and_plans_it_when_the_first_ends(
    backend_agent: AgentUnderTest,
) -> None:
    forma = _slow_forma()
    first = backend_agent.apply(forma)["command_id"]
    with backend_agent.client() as client:
        queued = client.apply(forma, "reconcile", False, False, "again", queue=True)
        destroy = client.destroy(None, "stack:net", False, "query", queue=True)
        second = client.command(queued["command_id"])

    assert queued["queued_behind"] == [first]
    assert destroy["queued_behind"] == [first, queued["command_id"]]
    assert (second["state"], second["message"]) == ("Queued", f"queued behind {first}")

    again = backend_agent.wait_command(queued["command_id"], timeout=60)
    assert backend_agent.wait_command(first)["state"] == "Success"
    assert again["state"] == "Success"
    assert again["updates"] == []  # planned after the first: nothing left to do, nothing created twice
    assert _duplicates(backend_agent) == {}
    gone = backend_agent.wait_command(destroy["command_id"], timeout=60)
    assert gone["state"] == "Success"
    assert len(gone["updates"]) == 23
    assert backend_agent.cloud() == {}


def test_a_queued_command_canceled_before_its_turn_never_runs(backend_agent: AgentUnderTest) -> None:
    first = backend_agent.apply(_slow_forma())["command_id"]
    with backend_agent.client() as client:
        queued = client.destroy(None, "stack:net", False, "query", queue=True)["command_id"]
        assert client.cancel(queued)["state"] in ("Canceling", "Canceled")
        wait_until(lambda: client.command(queued)["state"] == "Canceled", 10, "the queued command to end")

    assert backend_agent.wait_command(first)["state"] == "Success"
    assert len(backend_agent.cloud()) == 23
