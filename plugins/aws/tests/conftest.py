from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from aws_testing import CREDENTIALS, MotoServer
from formae_aws import AWSPlugin

from formae.plugin import TargetInfo
from formae.plugin.testing import PluginHarness


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
