from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.harness import AgentUnderTest, install_fake_aws

MakeAgent = Callable[..., AgentUnderTest]


@pytest.fixture
def agent_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    install_fake_aws(home)
    return home


@pytest.fixture
def make_agent() -> Iterator[MakeAgent]:
    """Builds agents that are torn down, with every plugin they spawned, when the test ends."""
    agents: list[AgentUnderTest] = []

    def make(home: Path, **kwargs: object) -> AgentUnderTest:
        agents.append(AgentUnderTest(home, **kwargs))  # type: ignore[arg-type]
        return agents[-1]

    yield make
    for agent in agents:
        agent.cleanup()


@pytest.fixture
def agent(agent_home: Path, make_agent: MakeAgent) -> AgentUnderTest:
    running = make_agent(agent_home).start()
    running.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
    return running
