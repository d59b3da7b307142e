"""ChangesetExecutor: what a resumed or canceled command leaves in the store, and what it leaves running.

Updates run against the real fake-aws plugin announced in memory, over a real SQLite store.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from formae_fake_aws import FakeAWSPlugin

from formae.agent.executor import ChangesetExecutor, Inventory
from formae.agent.rate_limiter import InFlightLimits, RateLimiter
from formae.agent.registry import PluginRegistry
from formae.agent.updater import RetryPolicy
from formae.model import Mode, Operation, ResourceKey, Target
from formae.plan.changeset import Changeset, PlannedUpdate
from formae.plan.dag import Dag
from formae.store import Command, CommandKind, Datastore, ResourceUpdateRecord, UpdateState, utc_now
from tests.unit.memory_stream import connected

pytestmark = pytest.mark.timeout(10)

BUCKET = "FakeAWS::S3::Bucket"
TARGET = Target(label="test", namespace="FakeAWS", config={})
POLICY = RetryPolicy(initial_delay=0.001, max_delay=0.005, poll_interval=0.001, plugin_wait=5.0)


def planned(label: str, *depends_on: str, properties: dict[str, Any] | None = None) -> PlannedUpdate:
    key = ResourceKey("default", BUCKET, label)
    return PlannedUpdate(
        id=label,
        operation=Operation.CREATE,
        key=key,
        target=TARGET,
        desired_properties=properties or {"BucketName": label},
        prior_properties=None,
        patch=None,
        native_id=None,
        depends_on=frozenset(depends_on),
    )


def record(command: Command, update: PlannedUpdate, state: UpdateState) -> ResourceUpdateRecord:
    return ResourceUpdateRecord(
        command_id=command.id,
        update_id=update.id,
        operation=Operation.CREATE,
        stack=update.key.stack,
        type=update.key.type,
        label=update.key.label,
        target=TARGET.label,
        state=state,
        updated_at=utc_now(),
        desired_properties=update.desired_properties,
        depends_on=sorted(update.depends_on),
    )


async def executor_for(
    store: Datastore,
    registry: PluginRegistry,
    states: dict[str, UpdateState],
    updates: list[PlannedUpdate],
    cancel: asyncio.Event,
) -> tuple[Command, ChangesetExecutor]:
    command = Command.new(CommandKind.APPLY, Mode.PATCH, {})
    records = {u.id: record(command, u, states.get(u.id, UpdateState.PENDING)) for u in updates}
    await store.create_command(command, list(records.values()))
    executor = ChangesetExecutor(
        dag=Dag(Changeset(tuple(updates))),
        records=records,
        store=store,
        registry=registry,
        limiter=RateLimiter(),
        policy=POLICY,
        inventory=Inventory({}),
        cancel=cancel,
        in_flight=InFlightLimits(),
    )
    return command, executor


async def stored_states(store: Datastore, command: Command) -> dict[str, UpdateState]:
    return {u.update_id: u.state for u in await store.get_updates(command.id)}


@pytest.mark.parametrize("canceling", [True, False])
async def test_a_resumed_cancel_counts_canceled_updates_as_canceled_and_stores_their_dependants(
    store: Datastore, canceling: bool
) -> None:
    """A crash in the middle of a cancel: 'a' was stored Canceled, its dependant 'b' not yet."""
    limiter = RateLimiter()
    registry = PluginRegistry(limiter)
    cancel = asyncio.Event()
    if canceling:
        cancel.set()
    updates = [planned("a"), planned("b", "a"), planned("c")]
    command, executor = await executor_for(
        store, registry, {"a": UpdateState.CANCELED, "c": UpdateState.SUCCESS}, updates, cancel
    )

    result = await executor.run()

    assert (result.succeeded, result.failed, result.canceled) == (1, 0, 2)
    assert await stored_states(store, command) == {
        "a": UpdateState.CANCELED,
        "b": UpdateState.CANCELED,
        "c": UpdateState.SUCCESS,
    }


async def test_updates_run_in_dependency_order_and_are_stored(store: Datastore) -> None:
    limiter = RateLimiter()
    registry = PluginRegistry(limiter)
    plugin = FakeAWSPlugin()
    updates = [planned("a"), planned("b", "a"), planned("c", "b")]
    async with connected(plugin, registry):
        command, executor = await executor_for(store, registry, {}, updates, asyncio.Event())
        result = await executor.run()

    assert (result.succeeded, result.failed, result.canceled) == (3, 0, 0)
    assert set((await stored_states(store, command)).values()) == {UpdateState.SUCCESS}
    assert sorted(plugin.cloud.resources) == ["a", "b", "c"]


MISSING = {"$res": True, "$label": "gone", "$type": BUCKET, "$stack": "default", "$property": "Arn"}


async def test_the_dependants_of_a_failed_update_are_failed_in_a_few_transactions(store: Datastore) -> None:
    limiter = RateLimiter()
    registry = PluginRegistry(limiter)
    root = planned("root", properties={"BucketName": "root", "Policy": MISSING})  # fails: unresolved
    leaves = [planned(f"leaf-{i}", "root") for i in range(300)]
    command, executor = await executor_for(store, registry, {}, [root, *leaves], asyncio.Event())
    before = store.write_stats.transactions

    result = await executor.run()

    assert (result.succeeded, result.failed) == (0, 301)
    stored = {u.update_id: u for u in await store.get_updates(command.id)}
    assert stored["root"].error_code == "UnresolvedReference"
    assert {stored[u.id].error_code for u in leaves} == {"DependencyFailure"}
    assert store.write_stats.transactions - before < 10  # not one commit per dependant


async def test_a_cancel_stores_what_it_drops_in_a_few_transactions(store: Datastore) -> None:
    limiter = RateLimiter()
    registry = PluginRegistry(limiter)
    cancel = asyncio.Event()
    cancel.set()
    updates = [planned(f"b-{i}") for i in range(300)]
    command, executor = await executor_for(store, registry, {}, updates, cancel)
    before = store.write_stats.transactions

    result = await executor.run()

    assert result.canceled == 300
    assert set((await stored_states(store, command)).values()) == {UpdateState.CANCELED}
    assert store.write_stats.transactions - before < 10  # not one commit per update


async def test_waiting_for_the_next_update_leaves_no_task_behind_when_cancelled(store: Datastore) -> None:
    limiter = RateLimiter()
    _, executor = await executor_for(store, PluginRegistry(limiter), {}, [planned("a")], asyncio.Event())
    before = asyncio.all_tasks()
    waiting = asyncio.create_task(executor._next_finished())
    await asyncio.sleep(0)  # inside: waiting on the queue and on the cancel event

    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0)

    assert [t for t in asyncio.all_tasks() - before if not t.done()] == []


async def test_ready_updates_beyond_a_few_times_the_in_flight_bound_wait_unstarted(store: Datastore) -> None:
    """100 ready updates with 2 calls in flight per namespace: at most 4 times 2 are tasks at any moment."""
    limiter = RateLimiter()
    registry = PluginRegistry(limiter)
    plugin = FakeAWSPlugin()
    updates = [planned(f"b{i}") for i in range(100)]
    alive = peak = 0

    class Counting(ChangesetExecutor):
        async def _update(self, planned: PlannedUpdate, record: ResourceUpdateRecord) -> ResourceUpdateRecord:
            nonlocal alive, peak
            alive += 1
            peak = max(peak, alive)
            try:
                return await super()._update(planned, record)
            finally:
                alive -= 1

    async with connected(plugin, registry):
        command = Command.new(CommandKind.APPLY, Mode.PATCH, {})
        records = {u.id: record(command, u, UpdateState.PENDING) for u in updates}
        await store.create_command(command, list(records.values()))
        executor = Counting(
            dag=Dag(Changeset(tuple(updates))),
            records=records,
            store=store,
            registry=registry,
            limiter=limiter,
            policy=POLICY,
            inventory=Inventory({}),
            cancel=asyncio.Event(),
            in_flight=InFlightLimits(per_namespace=2),
        )
        result = await executor.run()

    assert (result.succeeded, result.failed, result.canceled) == (100, 0, 0)
    assert len(plugin.cloud.resources) == 100
    assert 2 < peak <= 8
