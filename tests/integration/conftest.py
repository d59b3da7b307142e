from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.harness import AgentUnderTest, install_fake_aws
from tests.postgres import POSTGRES_URL, create_schema, drop_schema, with_search_path

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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for the default SQLite store in the agent's home, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield None
        return
    schema = asyncio.run(create_schema())
    try:
        yield with_search_path(POSTGRES_URL, schema)
    finally:
        asyncio.run(drop_schema(schema))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema (for tests of several agents sharing one store), dropped after."""
    schema = asyncio.run(create_schema())
    try:
        yield with_search_path(POSTGRES_URL, schema)
    finally:
        asyncio.run(drop_schema(schema))


@pytest.fixture
def backend_agent(agent_home: Path, make_agent: MakeAgent, store_url: str | None) -> AgentUnderTest:
    """An agent with fake-aws registered, on each datastore backend."""
    running = make_agent(agent_home, store_url=store_url).start()
    running.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
    return running
