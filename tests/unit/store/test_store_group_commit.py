from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import pytest

from formae.store import Datastore, GroupCommitter, StoreError, UpdateState, open_store, utc_now
from formae.store.group_commit import NO_REORDERING, OrderingGroups, _by_ordering_group
from tests.unit.store.store_factories import a_command, a_version, an_update

WRITERS = 200


async def test_concurrent_writers_share_transactions_and_every_write_is_durable(
    store: Datastore, store_url: str
) -> None:
    command = a_command()
    updates = [an_update(command, f"u{i:03}") for i in range(WRITERS)]
    await store.create_command(command, updates)
    before = store.write_stats

    async def writer(update: Any) -> None:
        for state in (UpdateState.DISPATCHING, UpdateState.IN_PROGRESS, UpdateState.SUCCESS):
            await store.save_progress(replace(update, state=state, updated_at=utc_now()))

    await asyncio.gather(*(writer(u) for u in updates))

    stats = store.write_stats
    assert stats.writes - before.writes == WRITERS * 3
    assert stats.transactions - before.transactions < WRITERS, "writes were not batched"
    async with await open_store(store_url) as other:  # a second connection sees them committed
        saved = await other.get_updates(command.id)
    assert len(saved) == WRITERS
    assert {u.state for u in saved} == {UpdateState.SUCCESS}


async def test_writes_in_one_batch_read_what_earlier_ones_wrote(store: Datastore) -> None:
    versions = await asyncio.gather(*(store.put_resource_version(a_version("logs")) for _ in range(50)))

    assert sorted(v.version for v in versions) == list(range(1, 51))
    assert len(await store.resource_history(versions[0].key)) == 50


async def test_one_bad_write_among_concurrent_ones_fails_alone(store: Datastore) -> None:
    good = [store.put_resource_version(a_version(f"b{i}")) for i in range(20)]
    bad = store.put_resource_version(a_version("broken", target=None))  # NOT NULL violation

    results = await asyncio.gather(*good, bad, return_exceptions=True)

    assert isinstance(results[-1], StoreError)
    assert not any(isinstance(r, BaseException) for r in results[:-1])
    assert len(await store.current_resources()) == 20


class _FakeTx:
    def __init__(self) -> None:
        self.values: list[str] = []

    async def execute(self, sql: str, *args: Any) -> None:
        self.values.append(args[0])

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.values.extend(row[0] for row in rows)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return []

    async def execute_script(self, script: str) -> None:
        pass


class _FakeDatabase:
    """Records what each transaction ran; can be told to fail transactions."""

    def __init__(self) -> None:
        self.committed: list[list[str]] = []
        self.fail_with: Exception | None = None

    async def transact(self, body: Callable[[Any], Awaitable[None]]) -> None:
        tx = _FakeTx()
        await body(tx)
        if self.fail_with is not None:
            raise self.fail_with
        self.committed.append(tx.values)


def _append(value: str) -> Callable[[Any], Awaitable[str]]:
    async def write(tx: Any) -> str:
        if value == "bad":
            raise ValueError("bad write")
        await tx.execute("INSERT INTO values VALUES ($1)", value)
        return value

    return write


async def _committer(db: _FakeDatabase) -> GroupCommitter:
    committer = GroupCommitter(db.transact, name="fake")
    committer.start()
    return committer


async def test_writes_queued_together_commit_in_one_transaction() -> None:
    db = _FakeDatabase()
    committer = await _committer(db)

    results = await asyncio.gather(*(committer.submit(_append(str(i))) for i in range(10)))
    await committer.close()

    assert results == [str(i) for i in range(10)]
    assert db.committed == [[str(i) for i in range(10)]]


async def test_a_failing_write_fails_alone() -> None:
    db = _FakeDatabase()
    committer = await _committer(db)

    results = await asyncio.gather(
        committer.submit(_append("a")), committer.submit(_append("bad")), committer.submit(_append("b")),
        return_exceptions=True,
    )  # fmt: skip
    await committer.close()

    assert results[0] == "a"
    assert results[2] == "b"
    assert isinstance(results[1], ValueError)
    assert sorted(v for batch in db.committed for v in batch) == ["a", "b"]


async def test_a_failing_database_fails_every_writer() -> None:
    db = _FakeDatabase()
    db.fail_with = StoreError("disk full")
    committer = await _committer(db)

    results = await asyncio.gather(
        *(committer.submit(_append(str(i))) for i in range(3)), return_exceptions=True
    )
    await committer.close()

    assert all(isinstance(r, StoreError) for r in results)
    assert db.committed == []


async def test_close_commits_what_is_queued_then_refuses_writes() -> None:
    db = _FakeDatabase()
    committer = await _committer(db)
    queued = [asyncio.ensure_future(committer.submit(_append(str(i)))) for i in range(5)]
    await asyncio.sleep(0)  # let the writers enqueue

    await committer.close()

    assert [await q for q in queued] == [str(i) for i in range(5)]
    with pytest.raises(StoreError, match="closed"):
        await committer.submit(_append("late"))


async def test_a_cancelled_writer_is_skipped_if_not_yet_written() -> None:
    db = _FakeDatabase()
    committer = await _committer(db)
    cancelled = asyncio.ensure_future(committer.submit(_append("gone")))
    kept = asyncio.ensure_future(committer.submit(_append("kept")))
    await asyncio.sleep(0)
    cancelled.cancel()

    assert await kept == "kept"
    await committer.close()

    assert db.committed == [["kept"]]


SCHEMA = OrderingGroups.from_schema(
    ["commands", "resource_updates", "resources", "stacks"], [("resource_updates", "commands")]
)


def test_statements_on_unrelated_tables_are_regrouped_and_related_ones_keep_their_order() -> None:
    update = "UPDATE resource_updates SET state = $3 WHERE command_id = $1 AND update_id = $2"
    insert = "INSERT INTO resources (stack) VALUES ($1)"
    command = "INSERT INTO commands (id) VALUES ($1)"
    pending = [(update, (1,)), (insert, (1,)), (command, ("c",)), (update, (2,)), (insert, (2,))]

    regrouped = _by_ordering_group(pending, SCHEMA)

    assert regrouped == [(update, (1,)), (command, ("c",)), (update, (2,)), (insert, (1,)), (insert, (2,))]


def test_a_statement_of_unknown_shape_or_table_is_a_barrier() -> None:
    insert = "INSERT INTO resources (stack) VALUES ($1)"
    pending = [(insert, (1,)), ("SELECT pg_advisory_xact_lock(1)", ()), (insert, (2,))]
    unknown = [(insert, (1,)), ("INSERT INTO made_up (x) VALUES (1)", ()), (insert, (2,))]

    assert _by_ordering_group(pending, SCHEMA) == pending
    assert _by_ordering_group(unknown, SCHEMA) == unknown
    assert SCHEMA.of("  update Resources set x = 1") == "resources"
    assert SCHEMA.of("DELETE FROM resource_updates") == SCHEMA.of("INSERT INTO commands (id) VALUES (1)")
    assert NO_REORDERING.of("DELETE FROM resources") is None


def test_foreign_keys_chain_tables_into_one_group() -> None:
    groups = OrderingGroups.from_schema(["a", "b", "c", "d"], [("b", "a"), ("c", "b")])

    assert (
        groups.of("INSERT INTO c VALUES (1)") == groups.of("UPDATE a SET x = 1") != groups.of("DELETE FROM d")
    )


async def test_the_ordering_is_read_from_the_migrated_schema_of_each_backend(store: Datastore) -> None:
    ordering = store._committer.ordering

    assert ordering.of("UPDATE resource_updates SET state = 1") == ordering.of(
        "INSERT INTO commands VALUES (1)"
    )
    assert ordering.of("INSERT INTO resources VALUES (1)") not in {None, ordering.of("DELETE FROM commands")}
    assert {"join_tokens", "stacks", "targets"} <= set(ordering.group_of)
