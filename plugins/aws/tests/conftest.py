from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_testing import CREDENTIALS, MotoServer
from formae_aws import AWSPlugin

from formae.plugin import TargetInfo
from formae.plugin.testing import PluginHarness
from formae.testing import AgentProcess

PLUGIN = Path(sys.executable).parent / "aws-plugin"


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server for the session (it takes a second or two to start); tests reset it."""
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log").start()
    try:
        yield server
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def aws(moto: MotoServer) -> MotoServer:
    """The moto server, emptied."""
    moto.reset()
    return moto


@pytest.fixture
def target(aws: MotoServer) -> TargetInfo:
    return TargetInfo("moto", "AWS", {"region": "us-east-1", "endpoint_url": aws.url})


@pytest.fixture
async def cloud(target: TargetInfo) -> PluginHarness:
    async with PluginHarness(AWSPlugin(), target) as harness:
        yield harness


def install_aws_plugin(home: Path) -> None:
    target = home / "plugins" / "aws" / "v0.1.0" / "aws-plugin"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(PLUGIN, target)


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Any]:
    """Starts agents with the aws plugin installed, given ``env``; ``grant`` (variable names or
    patterns) is what the plugin gets of it, else everything the test gave the agent."""
    agents: list[AgentProcess] = []

    def start(grant: list[str] | None = None, **env: str) -> AgentProcess:
        home = tmp_path / f"home{len(agents)}"
        install_aws_plugin(home)
        if grant is not None:
            (home / "grants").mkdir(mode=0o700)
            (home / "grants" / "aws.json").write_text(json.dumps({"env": grant}))
        agent = AgentProcess(home, env={**CREDENTIALS, **env})
        agents.append(agent)
        agent.start()
        agent.wait_for_log(r"Plugin registered namespace=AWS node=\S+", timeout=30)
        return agent

    yield start
    for agent in agents:
        agent.cleanup()
