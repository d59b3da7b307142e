"""Two agents over one store, in one process: claims refused across agents, takeover, the leader lease.

Each "agent" is a CommandRunner with its own identity, claims and leases over the same store (the
unit store is SQLite; what crosses agents here is only the store, as between processes). Leases
are given a negative or tiny duration instead of waiting for them to run out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from formae.agent.commands import CommandRunner, Rejected
from formae.agent.conflicts import Scope
from formae.agent.leadership import LeaderLease
from formae.agent.leases import AgentIdentity, CommandLeases
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import PluginRegistry
from formae.agent.stored_claims import overlapping
from formae.model import Mode
from formae.store import (
    ClaimPart,
    ClaimPartKind,
    Command,
    CommandKind,
    CommandState,
    Datastore,
    StoredClaim,
    open_store,
    sqlite_url,
)

pytestmark = pytest.mark.timeout(10)

NET = {"stacks": [{"label": "net"}], "targets": [], "resources": []}


def an_agent(store: Datastore, home: str, *, lease: float = 60) -> CommandRunner:
    identity = AgentIdentity(home, "host", 1, home[:4])
    limiter = RateLimiter()
    leases = CommandLeases(store, identity, duration=lease, renew_every=0.01)
    return CommandRunner(store, PluginRegistry(limiter), limiter, leases=leases)


@pytest.fixture
async def two(store: Datastore) -> AsyncIterator[tuple[CommandRunner, CommandRunner]]:
    alice, bob = an_agent(store, "aaaaaaaa"), an_agent(store, "bbbbbbbb")
    tasks = [asyncio.create_task(runner.run()) for runner in (alice, bob)]
    yield alice, bob
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Datastore]:
    opened = await open_store(sqlite_url(tmp_path / "formae.db"))
    try:
        yield opened
    finally:
        await opened.close()


async def hold_start(runner: CommandRunner, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Commands this runner is handed wait until the returned event is set."""
    go = asyncio.Event()
    execute = runner._execute

    async def held(start: Any) -> None:
        await go.wait()
        await execute(start)

    monkeypatch.setattr(runner, "_execute", held)
    return go


async def test_a_command_overlapping_another_agents_is_refused_naming_it_and_queued_with_wait(
    two: tuple[CommandRunner, CommandRunner], store: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = two
    go = await hold_start(alice, monkeypatch)
    first = await alice.submit_apply(NET, Mode.PATCH)
    assert first.command is not None

    with pytest.raises(Rejected) as refused:
        await bob.submit_apply(NET, Mode.PATCH)
    queued = await bob.submit_apply(NET, Mode.PATCH, queue=True)

    assert refused.value.conflict
    assert f"command {first.command.id} is changing stack 'net'" in str(refused.value)
    assert queued.queued_behind == (first.command.id,)
    go.set()
    assert queued.command is not None
    await bob.wait_finished(queued.command.id, 5)
    final = await store.get_command(queued.command.id, with_forma=False)
    assert final is not None
    assert final.state is CommandState.SUCCESS
    assert len(await store.list_commands()) == 3 - 1, "the refused command left nothing behind"


async def test_a_dead_agents_command_is_taken_over_once_its_lease_expires(store: Datastore) -> None:
    bob = an_agent(store, "bbbbbbbb")
    task = asyncio.create_task(bob.run())
    try:
        left = Command.new(CommandKind.APPLY, Mode.PATCH, NET)
        lapsed = store.now() - timedelta(seconds=1)  # while Bob runs: Alice's agent ran it, and died
        await store.create_command(replace(left, lease_owner="aaaaaaaa/host/1/dead", lease_expires_at=lapsed))
        await bob.wait_finished(left.id, 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    done = await store.get_command(left.id, with_forma=False)
    assert done is not None
    assert done.state is CommandState.SUCCESS
    assert done.lease_owner is None, "the lease is released at the end"


async def test_a_leader_stops_leading_before_its_lease_can_pass_to_another(store: Datastore) -> None:
    now = [0.0]
    alice = LeaderLease(store, AgentIdentity("aaaa", "h", 1, "x"), duration=60, every=1, clock=lambda: now[0])
    bob = LeaderLease(store, AgentIdentity("bbbb", "h", 2, "y"), duration=60, every=1, clock=lambda: now[0])

    assert await alice.renew()
    assert not await bob.renew()
    assert alice.leads()
    assert not bob.leads()
    now[0] = 60 * 0.8 + 0.01  # alice's renewals stopped reaching the store: she steps down first
    assert not alice.leads()


def test_claims_overlap_in_claim_order() -> None:
    net = (ClaimPart(ClaimPartKind.STACK, "net"),)
    live = [StoredClaim("c1", 1, net), StoredClaim("c2", 5, (ClaimPart(ClaimPartKind.EVERYTHING),))]

    assert [c.id for c, _ in overlapping(Scope.of(stacks={"net"}), live)] == ["c1", "c2"]
    assert overlapping(Scope.of(stacks={"app"}), live[:1]) == []
    assert [c.id for c, _ in overlapping(Scope.of(stacks={"net"}), live, of="c2")] == ["c1"]
    assert overlapping(Scope.of(stacks={"net"}), live, of="c1") == [], "a later claim waits, not the earlier"
    assert Scope.from_parts(Scope.of(stacks={"a", "b"}).parts()) == Scope.of(stacks={"a", "b"})
