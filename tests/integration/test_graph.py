"""``formae graph`` against a real agent: the agent's own plan as DOT, a PNG from Graphviz, drift."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.harness import AgentUnderTest, network_forma
from tests.integration.sync_helpers import console, sync
from tests.integration.test_cli import FORMAE, write

pytestmark = pytest.mark.timeout(90)

VPC, SUBNET = "net/FakeAWS::EC2::VPC/vpc", "net/FakeAWS::EC2::Subnet/subnet"
BUCKET = "net/FakeAWS::S3::Bucket/bucket"
_FILL = re.compile(r'"([^"]+)" \[label="[^"]*", fillcolor="(#\w+)"')
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def formae(
    agent: AgentUnderTest, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = _run(agent, args, env)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def _run(
    agent: AgentUnderTest, args: tuple[str, ...], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    environment = {**os.environ, **(env or {}), **agent.cli_env(), "FORMAE_API_URL": agent.runtime["api_url"]}
    return subprocess.run([str(FORMAE), *args], env=environment, capture_output=True, timeout=60, check=False)


def _fills(dot: str) -> dict[str, str]:
    return {k: v for k, v in _FILL.findall(dot) if not k.startswith("legend:")}


def _needs_graphviz() -> None:
    if shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("Graphviz's dot is missing on CI: .ci/install-browser installs it")
        pytest.skip("Graphviz's dot is not installed (bash .ci/install-browser installs it)")


def test_the_plan_of_a_forma_with_references_is_drawn_as_the_agent_plans_it(
    agent: AgentUnderTest, tmp_path: Path
) -> None:
    forma = write(tmp_path, "net.json", network_forma())

    drawn = formae(agent, "graph", str(forma))

    assert drawn.returncode == 0, drawn.stderr
    assert _fills(drawn.stdout) == {VPC: "#d7f0d8", SUBNET: "#d7f0d8", BUCKET: "#d7f0d8"}  # all created
    assert re.findall(r'^\s*"([^"]+)" -> "([^"]+)"', drawn.stdout, re.M) == [(VPC, SUBNET)]
    assert 'label="stack net"' in drawn.stdout
    assert agent.cloud() == {}  # a plan, nothing applied

    assert agent.apply_and_wait(network_forma())["state"] == "Success"
    changed = network_forma(bucket={"BucketName": "renamed"}, vpc={"Tags": {"env": "dev"}})
    replanned = formae(agent, "graph", str(write(tmp_path, "changed.json", changed)))

    assert replanned.returncode == 0, replanned.stderr
    fills = _fills(replanned.stdout)
    assert (fills[BUCKET], fills[VPC]) == ("#ffdcc4", "#fff0bf")  # replaced (create-only name), updated
    assert SUBNET not in fills  # its VPC is updated in place: nothing to do for it
    vpc_id = next(r.native_id for r in agent.cloud().values() if r.type == "FakeAWS::EC2::VPC")
    assert vpc_id in replanned.stdout  # boxes name their native ids


def test_the_png_is_a_real_png_of_a_readable_size(agent: AgentUnderTest, tmp_path: Path) -> None:
    _needs_graphviz()

    drawn = _run(agent, ("graph", str(write(tmp_path, "net.json", network_forma())), "-o", "png"))

    assert drawn.returncode == 0, drawn.stderr
    png = drawn.stdout
    assert png[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert 200 < width < 3000, (width, height)
    assert 100 < height < 3000, (width, height)
    assert 2_000 < len(png) < 500_000


def test_managed_resources_are_coloured_by_drift_after_an_out_of_band_change_and_a_sync(
    agent: AgentUnderTest,
) -> None:
    _needs_graphviz()
    agent.apply_and_wait(network_forma())
    console(agent, "update", "net-bucket", '{"Tags": {"by": "hand"}}')
    assert sync(agent)["counts"]["changed"] == 1

    dot = formae(agent, "graph", "--query", "stack:net")
    svg = formae(agent, "graph", "--query", "stack:net", "-o", "svg")

    assert dot.returncode == 0, dot.stderr
    assert _fills(dot.stdout) == {VPC: "#f4f4f4", SUBNET: "#f4f4f4", BUCKET: "#ffe2b8"}
    assert re.findall(r'^\s*"([^"]+)" -> "([^"]+)"', dot.stdout, re.M) == [(VPC, SUBNET)]
    assert svg.returncode == 0, svg.stderr
    assert svg.stdout.lstrip().startswith("<?xml")
    assert "changed in the cloud" in svg.stdout


def test_without_graphviz_png_fails_naming_how_to_install_it_and_dot_still_works(
    agent: AgentUnderTest, tmp_path: Path
) -> None:
    forma = str(write(tmp_path, "net.json", network_forma()))
    bare = {"PATH": str(Path(sys.executable).parent)}  # the venv's scripts, no system dot

    refused = formae(agent, "graph", forma, "-o", "png", env=bare)
    plain = formae(agent, "graph", forma, env=bare)

    assert refused.returncode == 1
    assert "apt-get install graphviz" in refused.stderr
    assert plain.returncode == 0
    assert plain.stdout.startswith("digraph formae {")
    usage = formae(agent, "graph", forma, "--query", "stack:net")
    assert usage.returncode == 2
    assert "not both" in usage.stderr
