"""What agents sharing a store coordinate through it: leases with fences, the leader, claims, agents rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from formae.model import ResourceKey
from formae.store import (
    AgentRecord,
    ClaimPart,
    ClaimPartKind,
    CommandState,
    Datastore,
    ResourceDeletion,
    StoredClaim,
    UpdateState,
    utc_now,
)
from tests.unit.store.store_factories import a_command, a_version, an_update

ALICE, BOB = "aaaa/host/1/x", "bbbb/host/2/y"
LOGS = ResourceKey("app", "FakeAWS::S3::Bucket", "logs")


async def test_a_lease_changes_hands_only_once_expired_and_each_change_bumps_the_generation(
    store: Datastore,
) -> None:
    command = a_command()
    await store.create_command(command)

    first = await store.acquire_command_lease(command.id, ALICE, 60)
    again = await store.acquire_command_lease(command.id, ALICE, 60)
    refused = await store.acquire_command_lease(command.id, BOB, 60)
    await store.acquire_command_lease(command.id, ALICE, -1)  # lapsed: Alice stopped renewing
    taken = await store.acquire_command_lease(command.id, BOB, 60)

    assert first is not None
    assert again == first
    assert refused is None
    assert taken is not None
    assert taken.generation == first.generation + 1
    assert [c.id for c in await store.adoptable_commands()] == []
    assert await store.renew_command_leases(ALICE, [command.id], 60) == {}
    assert await store.renew_command_leases(BOB, [command.id], 60) == {command.id: CommandState.PENDING}


async def test_the_late_writes_of_a_fenced_out_executor_change_nothing(store: Datastore) -> None:
    command = a_command()
    update = an_update(command, "u1", label="logs")
    await store.create_command(command, [update])
    old = await store.acquire_command_lease(command.id, ALICE, -1)  # Alice pauses past her lease
    new = await store.acquire_command_lease(command.id, BOB, 60)
    assert old is not None
    assert new is not None
    late = replace(update, state=UpdateState.SUCCESS, native_id="arn:late", updated_at=utc_now())

    await store.save_progress(replace(update, state=UpdateState.DISPATCHING), fence=old)
    await store.record_update(late, a_version("logs", command_id=command.id), fence=old)
    moved = await store.move_command(command.id, CommandState.FAILED, "late", tuple(CommandState), fence=old)

    assert await store.get_updates(command.id) == [update]
    assert await store.get_resource(LOGS) is None
    assert moved is None
    current = replace(update, state=UpdateState.SUCCESS, native_id="arn:bob", updated_at=utc_now())
    await store.record_update(
        current, a_version("logs", command_id=command.id, native_id="arn:bob"), fence=new
    )
    assert await store.get_updates(command.id) == [current]
    stored = await store.get_resource(LOGS)
    assert stored is not None
    assert stored.native_id == "arn:bob"
    await store.record_update(current, ResourceDeletion.of(LOGS, command.id), fence=old)
    assert await store.get_resource(LOGS) is not None, "a fenced-out delete wrote a tombstone"


async def test_expired_and_unleased_commands_are_adoptable_live_and_final_ones_are_not(
    store: Datastore,
) -> None:
    live, lapsed, free, done = a_command(), a_command(), a_command(), a_command()
    for command in (live, lapsed, free, done):
        await store.create_command(command)
    await store.acquire_command_lease(live.id, ALICE, 60)
    await store.acquire_command_lease(lapsed.id, ALICE, -1)
    await store.move_command(done.id, CommandState.SUCCESS, None, tuple(CommandState))

    adoptable = [c.id for c in await store.adoptable_commands()]
    of_my_home = [c.id for c in await store.adoptable_commands(successor_of="aaaa/")]

    assert adoptable == sorted([lapsed.id, free.id])
    assert of_my_home == sorted([live.id, lapsed.id, free.id])


async def test_one_leader_at_a_time_and_a_new_one_gets_a_new_generation(store: Datastore) -> None:
    first = await store.acquire_leadership("schedules", ALICE, 60)
    refused = await store.acquire_leadership("schedules", BOB, 60)
    kept = await store.acquire_leadership("schedules", ALICE, -1)
    taken = await store.acquire_leadership("schedules", BOB, 60)
    await store.release_leadership("schedules", BOB)
    back = await store.acquire_leadership("schedules", ALICE, 60)

    assert first is not None
    assert kept == first
    assert refused is None
    assert taken == first + 1
    assert back == first + 2
    assert (await store.leader("schedules"))[0] == ALICE


STACK_NET = [ClaimPart(ClaimPartKind.STACK, "net")]


async def test_a_claim_is_stored_with_its_command_only_if_admitted(store: Datastore) -> None:
    first, second = a_command(), a_command()
    seen: list[list[StoredClaim]] = []

    def admit_all(live: list[StoredClaim]) -> object:
        seen.append(live)
        return first

    stored = await store.create_claimed_command(STACK_NET, admit_all)  # type: ignore[arg-type]

    def refuse(live: list[StoredClaim]) -> None:
        seen.append(live)

    refused = await store.create_claimed_command(STACK_NET, refuse)

    assert stored == first
    assert refused is None
    assert await store.get_command(second.id) is None
    assert [c.command_id for c in seen[1]] == [first.id]
    assert seen[1][0].parts == tuple(STACK_NET)
    await store.move_command(first.id, CommandState.SUCCESS, None, tuple(CommandState))
    assert await store.live_claims() == [], "a claim ends with its command"


async def test_a_claim_widens_only_if_admitted_and_a_withdrawn_command_leaves_nothing(
    store: Datastore,
) -> None:
    command = a_command()
    await store.create_claimed_command(STACK_NET, lambda live: command)
    resource = [ClaimPart(ClaimPartKind.RESOURCE, "app", "FakeAWS::S3::Bucket", "logs")]

    assert not await store.widen_claim(command.id, resource, lambda live: False)
    assert await store.widen_claim(command.id, resource, lambda live: True)
    [claim] = await store.live_claims()
    assert claim.parts == (*STACK_NET, *resource)
    await store.delete_command(command.id)
    assert await store.live_claims() == []
    assert await store.get_command(command.id) is None


def an_agent(agent_id: str, owner: str, store: Datastore, seconds: float = 60) -> AgentRecord:
    now = store.now()
    return AgentRecord(
        agent_id, owner, "host", 1, "0.1.0", "http://127.0.0.1:1", "127.0.0.1:2", now, now,
        now + timedelta(seconds=seconds),
    )  # fmt: skip


async def test_an_exclusive_store_refuses_a_second_live_agent_and_takes_one_after_the_first_left(
    store: Datastore,
) -> None:
    alice, bob = an_agent("aaaa", ALICE, store), an_agent("bbbb", BOB, store)
    assert await store.register_agent(alice, exclusive=True) is None
    assert await store.register_agent(alice, exclusive=True) is None  # a restart of the same home

    refused = await store.register_agent(bob, exclusive=True)
    await store.retire_agent("aaaa", ALICE)
    admitted = await store.register_agent(bob, exclusive=True)

    assert refused is not None
    assert refused.id == "aaaa"
    assert admitted is None
    assert [a.id for a in await store.list_agents() if a.alive(store.now())] == ["bbbb"]
    assert await store.renew_agent("bbbb", BOB, 60)
    assert not await store.renew_agent("bbbb", ALICE, 60)


async def test_the_clock_is_the_databases(store: Datastore) -> None:
    offset = await store.measure_clock()
    assert abs(offset.total_seconds()) < 5
    assert abs((store.now() - utc_now()) - offset) < timedelta(milliseconds=50)
