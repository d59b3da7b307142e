"""A datastore outage mid-apply: the command pauses, says so, and finishes when the store is back.

Real faults, not mocks: the SQLite file sits on a small tmpfs that the test fills up (ENOSPC, in a
mount namespace of the agent's own), and PostgreSQL is reached through a TCP proxy the test cuts
(connections dropped and refused) and restores. Before, the command stopped running but stayed
InProgress; a re-apply then created everything again, and so did the zombie after a restart.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from formae.cli.client import Rejected
from formae.testing import wait_until
from tests.integration.conftest import MakeAgent
from tests.integration.harness import AgentUnderTest
from tests.integration.tcp_proxy import TcpProxy
from tests.postgres import POSTGRES_URL, create_schema, drop_schema, with_search_path

pytestmark = pytest.mark.timeout(240)

BUCKETS = 150
SLOW = {"FAKE_AWS_RATE_LIMIT": "40"}
"""Calls per second the plugin announces: the apply lasts ~10 s, so the outage lands mid-way."""


def _forma() -> dict[str, Any]:
    return {
        "stacks": [{"label": "big"}],
        "targets": [{"label": "local", "namespace": "FakeAWS", "config": {}}],
        "resources": [
            {
                "label": f"b{i}",
                "type": "FakeAWS::S3::Bucket",
                "stack": "big",
                "target": "local",
                "properties": {"BucketName": f"bucket-{i}", "FakeInProgressPolls": 2},
            }
            for i in range(BUCKETS)
        ],
    }


def _succeeded(agent: AgentUnderTest, command_id: str) -> int:
    with agent.client() as client:
        return int(client.command(command_id, updates=False)["summary"].get("Success", 0))


def _message(agent: AgentUnderTest, command_id: str) -> str:
    """The command's message; "" while the API still answers 503, which it may between the store's
    going away and the runner noticing it (after that the pause is served from memory)."""
    with agent.client() as client:
        try:
            return str(client.command(command_id, updates=False)["message"])
        except Rejected as error:
            if error.status != 503:
                raise
            return ""


def _ride_out(agent: AgentUnderTest, outage: Callable[[], None], restore: Callable[[], None]) -> None:
    """Apply, break the store mid-way, check the command pauses visibly, restore, count the cloud."""
    command_id = agent.apply(_forma())["command_id"]
    wait_until(lambda: _succeeded(agent, command_id) >= 10, 60, "the apply to be under way")

    outage()
    waiting = wait_until(
        lambda: "waiting for the datastore since" in (m := _message(agent, command_id)) and m,
        30,
        "the command to say it waits for the datastore",
    )
    with pytest.raises(Rejected) as refused:  # the paused command still holds its stack
        agent.apply(_forma())
    assert refused.value.status in (409, 503), refused.value.problems
    assert agent.log_count(r"datastore unavailable; running commands pause") == 1
    restore()

    command = agent.wait_command(command_id, timeout=120)
    assert command["state"] == "Success", (command["message"], waiting)
    assert len(command["updates"]) == BUCKETS
    names = Counter(r.properties["BucketName"] for r in agent.cloud().values())
    assert len(names) == BUCKETS  # 0 lost
    assert max(names.values()) == 1  # 0 duplicated
    with agent.client() as client:
        inventory = client.inventory("resources")
    assert {r["native_id"] for r in inventory} == {r.native_id for r in agent.cloud().values()}  # 0 orphaned
    assert agent.log_count(r"datastore available again after") >= 1


def _userns_unavailable() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True, check=False
    )
    return None if done.returncode == 0 else f"no user+mount namespaces here: {done.stderr!r}"


def _fill(directory: Path) -> Path:
    """Write a file until the filesystem is full (ENOSPC)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for chunk in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return filler


def test_sqlite_disk_full_mid_apply_pauses_the_command_until_space_is_back(
    agent_home: Path, make_agent: MakeAgent, tmp_path: Path
) -> None:
    if reason := _userns_unavailable():
        pytest.skip(reason)
    data = tmp_path / "small-disk"
    data.mkdir()
    mount = 'mount -t tmpfs -o size=24m tmpfs "$0" && exec "$@"'
    agent = make_agent(
        agent_home,
        store_url=f"sqlite://{data}/formae.db",
        env=dict(SLOW),
        launcher=["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", mount, str(data)],
    ).start()
    agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
    disk = Path(f"/proc/{agent.pid}/root") / data.relative_to("/")  # the agent's tmpfs, seen from here
    fillers: list[Path] = []

    def restore() -> None:
        for filler in fillers:
            filler.unlink()

    _ride_out(agent, lambda: fillers.append(_fill(disk)), restore)


@contextlib.contextmanager
def _proxied_schema() -> Iterator[tuple[str, TcpProxy]]:
    import asyncio

    schema = asyncio.run(create_schema())
    host, port = POSTGRES_URL.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)
    try:
        with TcpProxy((host, int(port))) as proxy:
            url = POSTGRES_URL.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
            yield with_search_path(url, schema), proxy
    finally:
        asyncio.run(drop_schema(schema))


@pytest.mark.postgres
def test_postgres_refusing_connections_mid_apply_pauses_the_command_until_it_is_back(
    agent_home: Path, make_agent: MakeAgent
) -> None:
    with _proxied_schema() as (url, proxy):
        agent = make_agent(agent_home, store_url=url, env=dict(SLOW)).start()
        agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
        _ride_out(agent, proxy.cut, proxy.restore)


@pytest.mark.postgres
def test_a_postgres_statement_past_its_timeout_is_an_outage_ridden_out(
    agent_home: Path, make_agent: MakeAgent
) -> None:
    import asyncio

    import asyncpg

    schema = asyncio.run(create_schema())
    url = with_search_path(POSTGRES_URL, schema) + "&statement_timeout=500"
    try:
        agent = make_agent(agent_home, store_url=url, env=dict(SLOW)).start()
        agent.wait_for_log(r"Plugin registered namespace=FakeAWS node=\S+", timeout=15)
        holder: dict[str, Any] = {}
        loop = asyncio.new_event_loop()

        async def lock() -> None:
            connection = await asyncpg.connect(POSTGRES_URL)
            transaction = connection.transaction()
            await transaction.start()
            await connection.execute(f'LOCK TABLE "{schema}".resource_updates IN ACCESS EXCLUSIVE MODE')
            holder.update(connection=connection, transaction=transaction)

        async def unlock() -> None:
            await holder["transaction"].rollback()
            await holder["connection"].close()

        try:
            _ride_out(
                agent, lambda: loop.run_until_complete(lock()), lambda: loop.run_until_complete(unlock())
            )
        finally:
            if "connection" in holder and not holder["connection"].is_closed():
                loop.run_until_complete(unlock())
            loop.close()
    finally:
        asyncio.run(drop_schema(schema))
