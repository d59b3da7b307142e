"""Many concurrent writers, few transactions: group commit.

The agent persists every step of every resource update before taking the next, so a large apply
produces tens of thousands of small writes. Committing each alone would make the database, not
the plugins, the bottleneck (one fsync per step on SQLite, one round trip per COMMIT on
PostgreSQL). Instead each writer hands a closure to the ``GroupCommitter`` and awaits; a single
background task takes everything queued, runs it in ONE transaction, and only after COMMIT
resolves every writer's future. Durability per caller is unchanged, the cost is shared.

If a batch fails, it is retried one write per transaction so that one bad write (a constraint
violation, a bug) fails only its own caller and the others still commit.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any, TypeVar, cast

from formae.store._dialect import Row, Tx
from formae.store.errors import StoreError, StoreUnavailable
from formae.telemetry.hooks import Telemetry

T = TypeVar("T")
Write = Callable[[Tx], Awaitable[T]]
Transact = Callable[[Callable[[Tx], Awaitable[None]]], Awaitable[None]]
"""Runs its argument inside one transaction: COMMIT if it returns, ROLLBACK if it raises."""

_log = logging.getLogger(__name__)


_WRITTEN_TABLE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class OrderingGroups:
    """Which tables' writes may be reordered against each other, derived from the schema itself.

    Tables joined by a foreign key, directly or through others, form one group whose writes keep
    their relative order (a ``resource_updates`` row must follow its ``commands`` row); writes to
    different groups commute. The groups are read from the database's catalog after migration, so
    a new table or foreign key is ordered correctly without anyone keeping a list in step. A
    statement writing a table the catalog did not list is a barrier: nothing moves across it.
    """

    group_of: Mapping[str, str]

    @classmethod
    def from_schema(cls, tables: Iterable[str], references: Iterable[tuple[str, str]]) -> OrderingGroups:
        """``references`` are (referencing table, referenced table) pairs."""
        parent = {table.lower(): table.lower() for table in tables}

        def root(table: str) -> str:
            while parent[table] != table:
                parent[table] = parent[parent[table]]
                table = parent[table]
            return table

        for child, referenced in references:
            a, b = root(child.lower()), root(referenced.lower())
            parent[max(a, b)] = min(a, b)
        return cls({table: root(table) for table in parent})

    def of(self, sql: str) -> str | None:
        """The group of the table a statement writes, or None when it cannot be told."""
        match = _WRITTEN_TABLE.match(sql)
        return None if match is None else self.group_of.get(match.group(1).lower())


NO_REORDERING = OrderingGroups({})
"""Before the schema is read every statement is a barrier: the writes go exactly as sent."""


@dataclass(slots=True)
class _Queued:
    write: Write[Any]
    future: asyncio.Future[Any]


class GroupCommitter:
    """One supervised writer task per store; ``submit`` returns once the write is committed."""

    def __init__(self, transact: Transact, *, name: str, max_batch: int = 1000) -> None:
        self._transact = transact
        self._name = name
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Queued | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._ordering = NO_REORDERING
        self.telemetry = Telemetry.off()
        """Told each transaction's duration and size; spans for the writes of a traced command."""
        self.transactions = 0
        """Committed transactions so far; with ``writes`` it shows how well batching works."""
        self.writes = 0

    @property
    def ordering(self) -> OrderingGroups:
        return self._ordering

    def start(self, ordering: OrderingGroups = NO_REORDERING) -> None:
        """Start the writer; ``ordering`` says which statements may be regrouped (none by default)."""
        if self._task is not None:
            raise RuntimeError("GroupCommitter already started")
        self._ordering = ordering
        self._task = asyncio.create_task(self._run(), name=f"group-commit {self._name}")
        self._task.add_done_callback(self._on_exit)

    async def submit(self, write: Write[T]) -> T:
        """Queue ``write`` and wait until the transaction holding it has committed."""
        if self._task is None or self._task.done() or self._closing:
            raise StoreError(f"the store {self._name} is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Queued(write, future))
        with self.telemetry.tracing.child_span("datastore commit"):
            return cast(T, await future)

    async def close(self) -> None:
        """Commit what is already queued, then stop the task. Safe to call twice."""
        if self._task is None or self._closing:
            return
        self._closing = True
        self._queue.put_nowait(None)
        await asyncio.shield(self._task)

    async def _run(self) -> None:
        batch: list[_Queued] = []
        try:
            while True:
                batch, stop = await self._next_batch()
                if batch:
                    await self._commit(batch)
                if stop:
                    return
        finally:
            stopped = StoreError(f"the store {self._name} stopped before the write was committed")
            for item in batch:
                _fail(item, stopped)

    async def _next_batch(self) -> tuple[list[_Queued], bool]:
        first = await self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < self._max_batch and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    async def _commit(self, batch: list[_Queued]) -> None:
        live = [item for item in batch if not item.future.done()]  # skip writers that gave up
        if not live:
            return
        try:
            results = await self._run_in_one_transaction(live)
        except Exception as error:
            if len(live) == 1 or isinstance(error, StoreUnavailable):  # an outage fails them all alike
                for item in live:
                    _fail(item, error)
                return
            _log.debug("batch of %d writes failed (%s); retrying one by one", len(live), error)
            for item in live:
                await self._commit([item])
            return
        for item, result in zip(live, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

    async def _run_in_one_transaction(self, batch: list[_Queued]) -> list[Any]:
        results: list[Any] = []

        async def body(tx: Tx) -> None:
            results.clear()  # in case a driver retries the body
            buffered = _BufferedTx(tx, self._ordering)
            for item in batch:
                results.append(await item.write(buffered))
            await buffered.flush()

        started = time.monotonic()
        await self._transact(body)
        self.telemetry.metrics.store_committed(time.monotonic() - started, len(batch))
        self.transactions += 1
        self.writes += len(batch)
        return results

    def _on_exit(self, task: asyncio.Task[None]) -> None:
        """Whatever stopped the writer, nobody may be left waiting for it."""
        reason = "closed" if not task.cancelled() and task.exception() is None else "stopped"
        if not task.cancelled() and task.exception() is not None:
            _log.error("group commit writer for %s died", self._name, exc_info=task.exception())
        error = StoreError(f"the store {self._name} is {reason}; the write was not committed")
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                _fail(item, error)


def _fail(item: _Queued, error: BaseException) -> None:
    if not item.future.done():
        item.future.set_exception(error)


class _BufferedTx:
    """Defers ``execute`` calls and sends runs of the same statement as one ``executemany``.

    Most writes are one or two statements; sending 200 writers' statements one by one costs
    hundreds of round trips (PostgreSQL) or thread hops (aiosqlite). Statements writing unrelated
    tables commute, so each ordering group (see ``OrderingGroups``) is flushed on its own, in its
    original order: a batch of ``UPDATE resource_updates; INSERT INTO resources`` pairs becomes two
    ``executemany`` calls instead of alternating single statements. A ``fetch`` flushes first, so
    every write still reads what the writes before it wrote. A failing statement surfaces at the
    flush, still inside the transaction, and the committer's one-by-one retry pins it on the write
    that sent it.
    """

    def __init__(self, tx: Tx, ordering: OrderingGroups) -> None:
        self._tx = tx
        self._ordering = ordering
        self._pending: list[tuple[str, Sequence[Any]]] = []

    async def execute(self, sql: str, *args: Any) -> None:
        self._pending.append((sql, args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._pending.extend((sql, row) for row in rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        await self.flush()
        return await self._tx.fetch(sql, *args)

    async def execute_script(self, script: str) -> None:
        await self.flush()
        await self._tx.execute_script(script)

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        for sql, rows in groupby(_by_ordering_group(pending, self._ordering), key=itemgetter(0)):
            args = [row for _, row in rows]
            if len(args) == 1:
                await self._tx.execute(sql, *args[0])
            else:
                await self._tx.executemany(sql, args)


def _by_ordering_group(
    pending: Sequence[tuple[str, Sequence[Any]]], ordering: OrderingGroups
) -> list[tuple[str, Sequence[Any]]]:
    """``pending`` regrouped: each ordering group's statements together, in their original order.

    Groups come in order of first appearance. A statement whose group cannot be told is a
    barrier: everything before it is emitted first, and nothing moves across it.
    """
    result: list[tuple[str, Sequence[Any]]] = []
    groups: dict[str, list[tuple[str, Sequence[Any]]]] = {}
    for statement in pending:
        group = ordering.of(statement[0])
        if group is None:
            result.extend(item for items in groups.values() for item in items)
            groups.clear()
            result.append(statement)
        else:
            groups.setdefault(group, []).append(statement)
    result.extend(item for items in groups.values() for item in items)
    return result
