"""The datastore: every operation the agent needs, written once for SQLite and PostgreSQL.

``Datastore`` holds the queries and the record mapping; a backend (``SqliteStore``,
``PostgresStore``) only supplies connections: ``_transact`` for writes (driven by the
``GroupCommitter``, so concurrent writers share transactions) and ``_read`` for queries.
"""

from __future__ import annotations

import asyncio
import hmac
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from fnmatch import fnmatchcase
from types import TracebackType
from typing import Any, Self, TypeVar

from formae.model import Operation, ResourceKey
from formae.store import _rows as rows
from formae.store._dialect import Dialect, Tx
from formae.store.api_tokens import ApiTokenStore
from formae.store.cluster import ClusterStore, _Clock
from formae.store.errors import JoinRefused, StoreError, mask_url
from formae.store.group_commit import GroupCommitter, OrderingGroups
from formae.store.migrate import migrate
from formae.store.records import (
    INCOMPLETE_COMMAND_STATES,
    UNMANAGED_STACK,
    Command,
    CommandState,
    Fence,
    JoinTokenRecord,
    NewResourceVersion,
    ResourceChange,
    ResourceDeletion,
    ResourceRecord,
    ResourceUpdateRecord,
    StackRecord,
    TargetRecord,
    UpdateState,
    VersionOrigin,
    utc_now,
)
from formae.telemetry.hooks import Telemetry

T = TypeVar("T")
_NOBODY = "(nobody)/"
"""An owner prefix no lease holder has (theirs start with a hex home id)."""
_FINAL = tuple(state for state in CommandState if state.is_final)
R = TypeVar("R")

_INSERT_COMMAND = rows.insert_sql("commands", rows.COMMAND_COLUMNS)
_INSERT_UPDATE = rows.insert_sql("resource_updates", rows.UPDATE_COLUMNS)
_SAVE_PROGRESS = (
    "UPDATE resource_updates SET "
    + ", ".join(f"{column} = ${i}" for i, column in enumerate(rows.PROGRESS_COLUMNS, start=3))
    + " WHERE command_id = $1 AND update_id = $2"
)


def _fenced(command: int, generation: int) -> str:
    """The condition a fenced write adds: the command's lease is still of this generation."""
    return (
        f" AND EXISTS (SELECT 1 FROM commands fence"
        f" WHERE fence.id = ${command} AND fence.lease_generation = ${generation})"
    )


_FENCE_AT = 3 + len(rows.PROGRESS_COLUMNS)
_SAVE_PROGRESS_FENCED = _SAVE_PROGRESS + _fenced(1, _FENCE_AT)
_INSERT_RESOURCE = rows.insert_sql("resources", rows.RESOURCE_COLUMNS)
_KEY = "stack = $1 AND type = $2 AND label = $3"
_WITHOUT_FORMA = ", ".join("NULL AS forma" if c == "forma" else c for c in rows.COMMAND_COLUMNS)


def _columns(with_forma: bool) -> str:
    """Command columns to select; without the forma, which can be megabytes for a big apply."""
    return "*" if with_forma else _WITHOUT_FORMA


# One round trip per new version: the next number is computed by the INSERT itself.
_APPEND_RESOURCE = (
    "INSERT INTO resources (stack, type, label, version, target, native_id, properties,"
    " desired_properties, deleted, command_id, created_at, managed, origin) VALUES ($1, $2, $3,"
    f" (SELECT COALESCE(MAX(version), 0) + 1 FROM resources WHERE {_KEY}),"
    " $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING version"
)
_APPEND_RESOURCE_BLIND = _APPEND_RESOURCE.removesuffix(" RETURNING version")
_APPEND_RESOURCE_FENCED = (
    "INSERT INTO resources (stack, type, label, version, target, native_id, properties,"
    " desired_properties, deleted, command_id, created_at, managed, origin) SELECT $1, $2, $3,"
    f" (SELECT COALESCE(MAX(version), 0) + 1 FROM resources WHERE {_KEY}),"
    " $4, $5, $6, $7, $8, $9, $10, $11, $12 WHERE EXISTS (SELECT 1 FROM commands fence"
    " WHERE fence.id = $9 AND fence.lease_generation = $13)"
)
_APPEND_TOMBSTONE_BLIND = (
    "INSERT INTO resources (stack, type, label, version, target, native_id, properties,"
    " desired_properties, deleted, command_id, created_at, managed, origin)"
    " SELECT stack, type, label, version + 1, target, native_id, properties, desired_properties,"
    f" TRUE, $4, $5, managed, $6 FROM resources WHERE {_KEY} AND NOT deleted"
    f" AND version = (SELECT MAX(version) FROM resources WHERE {_KEY})"
)
_APPEND_TOMBSTONE_FENCED = _APPEND_TOMBSTONE_BLIND + _fenced(4, 7)
_INSERT_OBSERVED = _INSERT_RESOURCE + " ON CONFLICT (stack, type, label, version) DO NOTHING"
_LATEST_STATE = f"SELECT version, deleted FROM resources WHERE {_KEY} ORDER BY version DESC LIMIT 1"
_RETIRE_UNMANAGED = (
    "INSERT INTO resources (stack, type, label, version, target, native_id, properties,"
    " desired_properties, deleted, command_id, created_at, managed, origin)"
    " SELECT r.stack, r.type, r.label, r.version + 1, r.target, r.native_id, r.properties,"
    " r.desired_properties, TRUE, $3, $4, r.managed, 'command' FROM resources r"
    " WHERE r.stack = $5 AND r.type = $1 AND r.native_id = $2 AND NOT r.deleted AND r.version = ("
    " SELECT MAX(m.version) FROM resources m"
    " WHERE m.stack = r.stack AND m.type = r.type AND m.label = r.label)"
)
_RETIRE_UNMANAGED_FENCED = _RETIRE_UNMANAGED + _fenced(3, 6)
_BEING_CHANGED = (
    "SELECT u.stack, u.type, u.label, u.operation FROM resource_updates u"
    " JOIN commands c ON c.id = u.command_id"
    " WHERE c.state IN ({commands}) AND u.state NOT IN ({final})"
)
_LATEST_OF_ORIGIN = (
    "SELECT r.* FROM resources r WHERE r.origin = $1 AND r.version = ("
    " SELECT MAX(m.version) FROM resources m"
    " WHERE m.stack = r.stack AND m.type = r.type AND m.label = r.label)"
    " ORDER BY r.stack, r.type, r.label"
)
_BASELINE = f"SELECT * FROM resources WHERE {_KEY} AND origin <> $4 ORDER BY version DESC LIMIT 1"
_INSERT_JOIN_TOKEN = (
    "INSERT INTO join_tokens (id, secret_sha256, namespaces, created_at, expires_at)"
    " VALUES ($1, $2, $3, $4, $5)"
)
_REDEEM_JOIN_TOKEN = (
    "UPDATE join_tokens SET used_at = $3, used_by = $4"
    " WHERE id = $1 AND secret_sha256 = $2 AND used_at IS NULL AND expires_at > $3 RETURNING *"
)
_JOIN_TOKEN = "SELECT * FROM join_tokens WHERE id = $1"
_UPSERT_STACK = rows.insert_sql("stacks", rows.STACK_COLUMNS, ("label",))
_UPSERT_TARGET = rows.insert_sql("targets", rows.TARGET_COLUMNS, ("label",))

_LATEST_VERSION = f"SELECT * FROM resources WHERE {_KEY} ORDER BY version DESC LIMIT 1"
_HISTORY = f"SELECT * FROM resources WHERE {_KEY} ORDER BY version"
_CURRENT = (
    "SELECT r.* FROM resources r WHERE NOT r.deleted AND r.version = ("
    " SELECT MAX(m.version) FROM resources m"
    " WHERE m.stack = r.stack AND m.type = r.type AND m.label = r.label)"
)


@dataclass(frozen=True, slots=True)
class _UpdateSql:
    """The statements ``record_update`` sends: plain, or each fenced by the command's lease."""

    progress: str
    append: str
    retire: str
    tombstone: str


_UNFENCED_SQL = _UpdateSql(_SAVE_PROGRESS, _APPEND_RESOURCE_BLIND, _RETIRE_UNMANAGED, _APPEND_TOMBSTONE_BLIND)
_FENCED_SQL = _UpdateSql(
    _SAVE_PROGRESS_FENCED, _APPEND_RESOURCE_FENCED, _RETIRE_UNMANAGED_FENCED, _APPEND_TOMBSTONE_FENCED
)


@dataclass(frozen=True, slots=True)
class Observation:
    """A version to write only if ``expected_version`` is still the latest of its key.

    What the synchronizer and discovery saw in the cloud must not overwrite what a command wrote
    meanwhile: the read is then stale, and the command's version stands.
    """

    expected_version: int | None
    """None: the key must have no live version (never written, or a tombstone last)."""
    record: ResourceRecord


@dataclass(frozen=True, slots=True)
class Drift:
    """A resource whose latest version is the synchronizer's: ``baseline`` is what the last command left."""

    current: ResourceRecord
    """The synchronizer's version: the cloud's properties, or a tombstone when it was gone."""
    baseline: ResourceRecord | None


@dataclass(frozen=True, slots=True)
class WriteStats:
    """How well group commit is batching: ``writes / transactions`` writes share each COMMIT."""

    transactions: int
    writes: int


class Datastore(ApiTokenStore, ClusterStore, ABC):
    """The agent's persistent memory. Every write is committed before its ``await`` returns."""

    def __init__(self, *, url: str, dialect: Dialect) -> None:
        self.url = mask_url(url)
        """The store's URL with any password masked: safe for logs and messages."""
        self._dialect = dialect
        self._committer = GroupCommitter(self._transact, name=self.url)
        self._closed = False
        self._clock = _Clock()

    def instrument(self, telemetry: Telemetry) -> None:
        """Hand the group committer the agent's telemetry: commit latency, sizes and spans."""
        self._committer.telemetry = telemetry

    def _ensure_open(self) -> None:
        """Reads after ``close()`` get a ``StoreError`` like writes do, not a driver's ValueError."""
        if self._closed:
            raise StoreError(f"the store {self.url} is closed")

    # -- what a backend provides -------------------------------------------------------------

    @abstractmethod
    async def _transact(self, body: Callable[[Tx], Awaitable[None]], *, failure: str | None = None) -> None:
        """Run ``body`` in one write transaction; driver errors become ``StoreError(failure…)``."""

    @abstractmethod
    async def _read(self, what: str, query: Callable[[Tx], Awaitable[T]]) -> T:
        """Run a read-only ``query``; ``what`` names it in a ``StoreError``."""

    @abstractmethod
    async def _close_connections(self) -> None: ...

    # -- lifecycle ---------------------------------------------------------------------------

    async def _migrate_and_start(self) -> None:
        """The backends' ``open`` ends here; on failure the connections are released."""

        ordering: list[OrderingGroups] = []

        async def body(tx: Tx) -> None:
            await migrate(tx, self._dialect)
            ordering.append(await _ordering_groups(tx, self._dialect))

        try:
            await self._transact(body, failure=f"cannot migrate the schema of {self.url}")
        except BaseException:
            await self._close_connections()
            raise
        self._committer.start(ordering[0])

    async def close(self) -> None:
        """Commit the writes already queued, then release the connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._committer.close()
        finally:
            await self._close_connections()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def write_stats(self) -> WriteStats:
        return WriteStats(self._committer.transactions, self._committer.writes)

    # -- commands ----------------------------------------------------------------------------

    async def create_command(self, command: Command, updates: Sequence[ResourceUpdateRecord] = ()) -> None:
        """Store a new command with its planned updates, all or nothing."""
        d = self._dialect

        async def write(tx: Tx) -> None:
            await tx.execute(_INSERT_COMMAND, *rows.command_params(d, command))
            if updates:
                await tx.executemany(_INSERT_UPDATE, [rows.update_params(d, u) for u in updates])

        await self._committer.submit(write)

    async def get_command(self, command_id: str, *, with_forma: bool = True) -> Command | None:
        found = await self._fetch_commands(
            f"SELECT {_columns(with_forma)} FROM commands WHERE id = $1", command_id
        )
        return found[0] if found else None

    async def list_commands(
        self, limit: int = 50, states: Collection[CommandState] | None = None, *, with_forma: bool = True
    ) -> list[Command]:
        """The newest ``limit`` commands, newest first, optionally only those in ``states``."""
        if states is not None and not states:
            return []
        where, args = _state_filter(states, first=2)
        sql = f"SELECT {_columns(with_forma)} FROM commands{where} ORDER BY id DESC LIMIT $1"
        return await self._fetch_commands(sql, limit, *args)

    async def list_incomplete_commands(self) -> list[Command]:
        """Commands a crashed agent left unfinished, oldest first: what to resume at start."""
        where, args = _state_filter(INCOMPLETE_COMMAND_STATES, first=1)
        return await self._fetch_commands(f"SELECT * FROM commands{where} ORDER BY id", *args)

    async def move_command(
        self,
        command_id: str,
        state: CommandState,
        message: str | None,
        expected: Collection[CommandState],
        *,
        fence: Fence | None = None,
    ) -> Command | None:
        """Move a command to ``state`` only if it is in one of ``expected`` (compare and set).

        The agent's command state machine passes the states its table allows to move from, so a
        write that lost a race (a cancel after the end) changes nothing and returns None. With a
        ``fence``, so does a write whose lease another agent has taken over.
        """
        d = self._dialect
        where, states = _state_filter(expected, first=5)
        args: list[object] = [*states]
        fenced = f" AND lease_generation = ${5 + len(args)}" if fence is not None else ""
        sql = (
            "UPDATE commands SET state = $2, message = COALESCE($3, message), updated_at = $4"
            f" WHERE id = $1 AND{where.removeprefix(' WHERE')}{fenced} RETURNING {_WITHOUT_FORMA}"
        )
        if fence is not None:
            args.append(fence.generation)

        async def write(tx: Tx) -> list[Command]:
            found = await tx.fetch(sql, command_id, state.value, message, d.encode_time(utc_now()), *args)
            return [rows.command_from_row(d, r) for r in found]

        updated = await self._committer.submit(write)
        return updated[0] if updated else None

    async def plan_queued_command(
        self, command_id: str, updates: Sequence[ResourceUpdateRecord], *, fence: Fence | None = None
    ) -> Command | None:
        """A queued command's turn: its updates stored and the command ``Pending``, in one transaction.

        None (and nothing written) if the command is no longer ``Queued`` (canceled meanwhile), or
        its lease was taken over (``fence``).
        """
        d = self._dialect
        sql = (
            "UPDATE commands SET state = $2, message = '', updated_at = $3"
            " WHERE id = $1 AND state = $4 AND ($5 < 0 OR lease_generation = $5)"
            f" RETURNING {_WITHOUT_FORMA}"
        )
        now = d.encode_time(utc_now())
        generation = fence.generation if fence is not None else -1

        async def write(tx: Tx) -> list[Command]:
            found = await tx.fetch(
                sql, command_id, CommandState.PENDING.value, now, CommandState.QUEUED.value, generation
            )
            if found and updates:
                await tx.executemany(_INSERT_UPDATE, [rows.update_params(d, u) for u in updates])
            return [rows.command_from_row(d, r) for r in found]

        moved = await self._committer.submit(write)
        return moved[0] if moved else None

    # -- command leases ----------------------------------------------------------------------

    async def acquire_command_lease(
        self, command_id: str, owner: str, seconds: float, *, successor_of: str | None = None
    ) -> Fence | None:
        """Lease an unfinished command: when free, expired, ours, or left by ``successor_of``.

        ``successor_of`` is an owner prefix whose holders are known dead (an earlier agent of the
        home whose lock the caller now holds): their leases are taken over without waiting. The
        answer is the fence every write of the executor carries; None if another agent holds it.
        Expiry is timed by the database's clock (``now``), so agents' clocks need not agree.
        """
        d = self._dialect
        sql = (
            "UPDATE commands SET lease_owner = $2, lease_expires_at = $3,"
            " lease_generation = CASE WHEN lease_owner = $2 THEN lease_generation"
            " ELSE lease_generation + 1 END WHERE id = $1 AND ("
            " lease_owner IS NULL OR lease_owner = $2 OR lease_expires_at < $4"
            " OR substr(lease_owner, 1, length($5)) = $5)"
            f" AND state NOT IN ({', '.join(repr(s.value) for s in _FINAL)}) RETURNING lease_generation"
        )
        prefix = successor_of if successor_of else owner
        now, expires = d.encode_time(self.now()), self._until(seconds)

        async def write(tx: Tx) -> list[Any]:
            return list(await tx.fetch(sql, command_id, owner, expires, now, prefix))

        found = await self._committer.submit(write)
        return Fence(command_id, int(found[0]["lease_generation"])) if found else None

    async def renew_command_leases(
        self, owner: str, command_ids: Collection[str], seconds: float
    ) -> dict[str, CommandState]:
        """Extend the leases ``owner`` holds on ``command_ids``: those still held, with their state.

        A lease taken over is missing; a state of Canceling says a cancel came through another agent.
        """
        ids = sorted(command_ids)
        if not ids:
            return {}
        marks = ", ".join(f"${i}" for i in range(3, len(ids) + 3))
        sql = (
            f"UPDATE commands SET lease_expires_at = $2 WHERE lease_owner = $1 AND id IN ({marks})"
            " RETURNING id, state"
        )
        until = self._until(seconds)

        async def write(tx: Tx) -> dict[str, CommandState]:
            return {str(r["id"]): CommandState(r["state"]) for r in await tx.fetch(sql, owner, until, *ids)}

        return await self._committer.submit(write)

    async def release_command_lease(self, command_id: str, owner: str) -> None:
        sql = (
            "UPDATE commands SET lease_owner = NULL, lease_expires_at = NULL"
            " WHERE id = $1 AND lease_owner = $2"
        )
        await self._committer.submit(lambda tx: tx.execute(sql, command_id, owner))

    async def adoptable_commands(self, *, successor_of: str | None = None) -> list[Command]:
        """Unfinished commands nobody executes (no lease, or an expired one), oldest first.

        With ``successor_of``, also those an earlier agent of this home left (it is known dead).
        """
        where, args = _state_filter(INCOMPLETE_COMMAND_STATES, first=3)
        sql = (
            f"SELECT * FROM commands{where} AND (lease_owner IS NULL OR lease_expires_at < $1"
            " OR substr(lease_owner, 1, length($2)) = $2) ORDER BY id"
        )
        now = self._dialect.encode_time(self.now())
        return await self._fetch_commands(sql, now, successor_of or _NOBODY, *args)

    async def _fetch_commands(self, sql: str, *args: object) -> list[Command]:
        d = self._dialect

        async def query(tx: Tx) -> list[Command]:
            return [rows.command_from_row(d, r) for r in await tx.fetch(sql, *args)]

        return await self._read("reading commands", query)

    # -- resource updates --------------------------------------------------------------------

    async def get_updates(
        self,
        command_id: str,
        *,
        after: str | None = None,
        limit: int | None = None,
        states: Collection[UpdateState] | None = None,
        since: datetime | None = None,
    ) -> list[ResourceUpdateRecord]:
        """The command's updates in ``update_id`` order: all, or a page of ``limit`` after ``after``.

        A page is a keyset range of the primary key, so reading page 100 costs what page 1 does.
        ``since`` keeps the updates changed at or after that time: what a watcher has not seen.
        """
        d = self._dialect
        sql = "SELECT * FROM resource_updates WHERE command_id = $1"
        args: list[Any] = [command_id]
        if after is not None:
            args.append(after)
            sql += f" AND update_id > ${len(args)}"
        if since is not None:
            args.append(d.encode_time(since))
            sql += f" AND updated_at >= ${len(args)}"
        if states is not None:
            values = sorted({state.value for state in states}) or [""]
            sql += f" AND state IN ({', '.join(f'${len(args) + 1 + i}' for i in range(len(values)))})"
            args += values
        sql += " ORDER BY update_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"

        async def query(tx: Tx) -> list[Any]:
            return list(await tx.fetch(sql, *args))

        found = await self._read("reading resource updates", query)
        return await self._converted(found, lambda r: rows.update_from_row(d, r))

    async def changed_stack(self, command_id: str, stack: str) -> bool:
        """Whether the command completed any resource update in ``stack``."""
        sql = (
            "SELECT 1 AS hit FROM resource_updates"
            " WHERE command_id = $1 AND stack = $2 AND state = $3 LIMIT 1"
        )

        async def query(tx: Tx) -> bool:
            return bool(await tx.fetch(sql, command_id, stack, UpdateState.SUCCESS.value))

        return await self._read("reading resource updates", query)

    async def count_updates(self, command_id: str) -> dict[UpdateState, int]:
        """How many of a command's updates are in each state: a progress view without the rows."""
        sql = "SELECT state, COUNT(*) AS n FROM resource_updates WHERE command_id = $1 GROUP BY state"

        async def query(tx: Tx) -> dict[UpdateState, int]:
            return {UpdateState(r["state"]): int(r["n"]) for r in await tx.fetch(sql, command_id)}

        return await self._read("counting resource updates", query)

    async def save_progress(self, update: ResourceUpdateRecord, *, fence: Fence | None = None) -> None:
        """One step of a running update: only what a step changes (state, attempts, request id, …).

        The update must exist (``create_command`` wrote it); its plan columns are left as they are,
        so a step costs a small UPDATE rather than re-encoding the properties and patch.
        """
        params = rows.progress_params(self._dialect, update)
        sql = _SAVE_PROGRESS if fence is None else _SAVE_PROGRESS_FENCED
        if fence is not None:
            params = (*params, fence.generation)

        async def write(tx: Tx) -> None:
            await tx.execute(sql, *params)

        await self._committer.submit(write)

    async def record_update(
        self, update: ResourceUpdateRecord, change: ResourceChange | None, *, fence: Fence | None = None
    ) -> None:
        """Save ``update``'s progress and apply ``change`` to the inventory in ONE transaction.

        A crash can then never leave an update marked done whose resource version is missing, or a
        new version whose update still looks unfinished (and would be run again). The hot path of an
        apply: one call per finished resource operation, reading nothing back, so a whole batch goes
        as a few statements. An adoption's unmanaged resource
        (same type and native id) gets its tombstone in the same transaction: one cloud resource is
        never in the inventory twice. (Only adoptions: a statement between every two appends would
        break the group committer's batching of a big apply.)
        """
        d = self._dialect
        sql = _FENCED_SQL if fence is not None else _UNFENCED_SQL
        extra = (fence.generation,) if fence is not None else ()

        async def write(tx: Tx) -> None:
            await tx.execute(sql.progress, *rows.progress_params(d, update), *extra)
            if isinstance(change, NewResourceVersion):
                await tx.execute(
                    sql.append, *rows.resource_params_without_version(d, _version_of(change)), *extra
                )
                if change.adopts and change.native_id:
                    await tx.execute(
                        sql.retire, change.type, change.native_id, update.command_id,
                        d.encode_time(utc_now()), UNMANAGED_STACK, *extra,
                    )  # fmt: skip
            elif isinstance(change, ResourceDeletion):
                await tx.execute(
                    sql.tombstone,
                    *change.key,
                    change.command_id,
                    d.encode_time(utc_now()),
                    change.origin.value,
                    *extra,
                )

        await self._committer.submit(write)

    # -- join tokens -------------------------------------------------------------------------

    async def create_join_token(self, token: JoinTokenRecord) -> None:
        d = self._dialect
        params = (
            token.id, token.secret_sha256, rows.encode_json(list(token.namespaces)),
            d.encode_time(token.created_at), d.encode_time(token.expires_at),
        )  # fmt: skip

        async def write(tx: Tx) -> None:
            await tx.execute(_INSERT_JOIN_TOKEN, *params)

        await self._committer.submit(write)

    async def redeem_join_token(self, token_id: str, secret_sha256: str, used_by: str) -> JoinTokenRecord:
        """Spend a token, once: the update only matches an unused, unexpired token with this secret.

        Two plugins racing with one token: exactly one of them gets the row back.
        Raises ``JoinRefused`` saying why (unknown, wrong secret, used, expired) otherwise.
        """
        d = self._dialect
        now = utc_now()

        async def write(tx: Tx) -> list[JoinTokenRecord]:
            found = await tx.fetch(_REDEEM_JOIN_TOKEN, token_id, secret_sha256, d.encode_time(now), used_by)
            return [rows.join_token_from_row(d, r) for r in found]

        redeemed = await self._committer.submit(write)
        if redeemed:
            return redeemed[0]
        raise JoinRefused(await self._why_not_redeemed(token_id, secret_sha256, now))

    async def _why_not_redeemed(self, token_id: str, secret_sha256: str, now: datetime) -> str:
        d = self._dialect

        async def query(tx: Tx) -> list[JoinTokenRecord]:
            return [rows.join_token_from_row(d, r) for r in await tx.fetch(_JOIN_TOKEN, token_id)]

        found = await self._read("reading join tokens", query)
        if not found or not hmac.compare_digest(found[0].secret_sha256, secret_sha256):
            return f"join token {token_id} is unknown or its secret is wrong"
        if found[0].used_at is not None:
            return f"join token {token_id} was already used (by {found[0].used_by})"
        return f"join token {token_id} expired at {found[0].expires_at.isoformat(timespec='seconds')}"

    # -- resources ---------------------------------------------------------------------------

    async def put_resource_version(self, version: NewResourceVersion) -> ResourceRecord:
        """Append the next version of a resource: 1 when new; numbering continues after a deletion."""
        record = await self._committer.submit(lambda tx: _append_version(tx, self._dialect, version))
        assert record is not None  # a NewResourceVersion always writes a version
        return record

    async def delete_resource(self, deletion: ResourceDeletion) -> ResourceRecord | None:
        """Append a tombstone version; None (and no write) if the resource is absent already."""
        return await self._committer.submit(lambda tx: _append_version(tx, self._dialect, deletion))

    async def current_resources(
        self, stack: str | None = None, type_pattern: str | None = None
    ) -> list[ResourceRecord]:
        """The inventory: latest live version of each resource, by stack, type, label.

        ``type_pattern`` is a case-sensitive shell glob such as ``FakeAWS::S3::*``; it is matched
        here rather than in SQL because SQLite's LIKE and PostgreSQL's LIKE disagree on case.
        """
        sql, args = (_CURRENT + " AND r.stack = $1", (stack,)) if stack is not None else (_CURRENT, ())
        found = await self._fetch_resources(sql + " ORDER BY r.stack, r.type, r.label", *args)
        if type_pattern is None:
            return found
        return [r for r in found if fnmatchcase(r.type, type_pattern)]

    async def get_resource(self, key: ResourceKey) -> ResourceRecord | None:
        """The current version of ``key``, or None if it never existed or is deleted."""
        found = await self._fetch_resources(_LATEST_VERSION, *key)
        return found[0] if found and not found[0].deleted else None

    async def resource_history(self, key: ResourceKey) -> list[ResourceRecord]:
        """Every version of ``key``, oldest first, tombstones included."""
        return await self._fetch_resources(_HISTORY, *key)

    async def _fetch_resources(self, sql: str, *args: object) -> list[ResourceRecord]:
        d = self._dialect

        async def query(tx: Tx) -> list[Any]:
            return list(await tx.fetch(sql, *args))

        found = await self._read("reading resources", query)
        return await self._converted(found, lambda r: rows.resource_from_row(d, r))

    async def _converted(self, found: list[Any], convert: Callable[[Any], R]) -> list[R]:
        """``found`` turned into records, CONVERT_AT_ONCE rows at a time, letting the loop run between."""
        converted: list[R] = []
        for start in range(0, len(found), CONVERT_AT_ONCE):
            if start:
                await asyncio.sleep(0)
            converted += [convert(r) for r in found[start : start + CONVERT_AT_ONCE]]
        return converted

    async def observe(self, observations: Sequence[Observation]) -> list[bool]:
        """Write each observation whose expected version is still the latest; which were written.

        One transaction for the batch. A lost race (a command wrote meanwhile, or another agent
        observed first) writes nothing for that key and fails nothing else.
        """
        d = self._dialect

        async def write(tx: Tx) -> list[bool]:
            written = []
            for observation in observations:
                found = await tx.fetch(_LATEST_STATE, *observation.record.key)
                latest = int(found[0]["version"]) if found else 0
                if observation.expected_version is None:
                    ok = not found or bool(found[0]["deleted"])
                else:
                    ok = latest == observation.expected_version
                if ok:
                    record = replace(observation.record, version=latest + 1, created_at=utc_now())
                    await tx.execute(_INSERT_OBSERVED, *rows.resource_params(d, record))
                written.append(ok)
            return written

        return await self._committer.submit(write)

    async def keys_being_changed(self) -> dict[ResourceKey, set[Operation]]:
        """Resources with an unfinished update in an unfinished command, and which operations.

        Asked from the store, so it holds for every agent sharing it: the synchronizer never
        writes over a resource a command is changing, and discovery never takes a resource a
        create is making for an unmanaged one.
        """
        commands = [s.value for s in INCOMPLETE_COMMAND_STATES]
        final = [s.value for s in UpdateState if s.is_final]
        marks = ", ".join(f"${i}" for i in range(1, len(commands) + 1))
        finals = ", ".join(f"${i}" for i in range(len(commands) + 1, len(commands) + len(final) + 1))
        sql = _BEING_CHANGED.format(commands=marks, final=finals)

        async def query(tx: Tx) -> dict[ResourceKey, set[Operation]]:
            found: dict[ResourceKey, set[Operation]] = {}
            for r in await tx.fetch(sql, *commands, *final):
                key = ResourceKey(r["stack"], r["type"], r["label"])
                found.setdefault(key, set()).add(Operation(r["operation"]))
            return found

        return await self._read("reading resource updates", query)

    async def drifted(self) -> list[Drift]:
        """Resources whose latest version the synchronizer wrote: changed or deleted in the cloud."""
        d = self._dialect

        async def query(tx: Tx) -> list[Drift]:
            drifts = []
            for row in await tx.fetch(_LATEST_OF_ORIGIN, VersionOrigin.SYNC.value):
                current = rows.resource_from_row(d, row)
                found = await tx.fetch(_BASELINE, *current.key, VersionOrigin.SYNC.value)
                drifts.append(Drift(current, rows.resource_from_row(d, found[0]) if found else None))
            return drifts

        return await self._read("reading resources", query)

    # -- stacks and targets ------------------------------------------------------------------

    async def upsert_stack(self, stack: StackRecord) -> None:
        params = rows.stack_params(self._dialect, stack)
        await self._committer.submit(lambda tx: tx.execute(_UPSERT_STACK, *params))

    async def list_stacks(self) -> list[StackRecord]:
        d = self._dialect

        async def query(tx: Tx) -> list[StackRecord]:
            return [rows.stack_from_row(d, r) for r in await tx.fetch("SELECT * FROM stacks ORDER BY label")]

        return await self._read("reading stacks", query)

    async def stack_reconciled(self, label: str, at: datetime) -> None:
        """An auto-reconcile ran: its next one is due an interval from ``at``."""
        params = (label, self._dialect.encode_time(at))
        await self._committer.submit(
            lambda tx: tx.execute("UPDATE stacks SET reconciled_at = $2 WHERE label = $1", *params)
        )

    async def delete_stack(self, label: str) -> None:
        """Forget a stack (its resources' history stays): what a TTL policy does once they are gone."""
        await self._committer.submit(lambda tx: tx.execute("DELETE FROM stacks WHERE label = $1", label))

    async def stack_expired(self, label: str) -> None:
        """A TTL policy's destroy was submitted: the stack must not be destroyed again and again."""
        await self._committer.submit(
            lambda tx: tx.execute("UPDATE stacks SET expires_at = NULL WHERE label = $1", label)
        )

    async def upsert_target(self, target: TargetRecord) -> None:
        await self._committer.submit(lambda tx: tx.execute(_UPSERT_TARGET, *rows.target_params(target)))

    async def list_targets(self) -> list[TargetRecord]:
        async def query(tx: Tx) -> list[TargetRecord]:
            return [rows.target_from_row(r) for r in await tx.fetch("SELECT * FROM targets ORDER BY label")]

        return await self._read("reading targets", query)


CONVERT_AT_ONCE = 200
"""Rows turned into records between two chances for the event loop to run something else: reading a
large result must never hold the loop (which also answers plugin heartbeats) for long. Done on the
loop rather than in a thread on purpose: a thread busy in Python makes the loop wait for the GIL
behind it at every step (measured: heartbeat answers of seconds under 50 concurrent large reads)."""


def _state_filter(states: Collection[CommandState] | None, *, first: int) -> tuple[str, list[str]]:
    """`` WHERE state IN ($first, …)`` and its arguments; no clause when ``states`` is None."""
    if states is None:
        return "", []
    values = sorted({s.value for s in states})
    placeholders = ", ".join(f"${first + i}" for i in range(len(values)))
    return f" WHERE state IN ({placeholders})", values


async def _append_version(tx: Tx, d: Dialect, change: ResourceChange) -> ResourceRecord | None:
    """Write the version after the latest one of ``change``'s key, inside the caller's transaction.

    Versions are counted here, not by a sequence, so they run 1, 2, 3… per key; two agents
    racing on one key collide on the primary key instead of silently interleaving.
    """
    if isinstance(change, NewResourceVersion):
        record = _version_of(change)
        found = await tx.fetch(_APPEND_RESOURCE, *rows.resource_params_without_version(d, record))
        return replace(record, version=int(found[0]["version"]))
    found = await tx.fetch(_LATEST_VERSION, *change.key)
    latest = rows.resource_from_row(d, found[0]) if found else None
    if latest is None or latest.deleted:
        return None
    tombstone = replace(
        latest,
        version=latest.version + 1,
        deleted=True,
        command_id=change.command_id,
        created_at=utc_now(),
        origin=change.origin,
    )
    await tx.execute(_INSERT_RESOURCE, *rows.resource_params(d, tombstone))
    return tombstone


def _version_of(change: NewResourceVersion) -> ResourceRecord:
    """The record to insert; its version number is assigned by the INSERT."""
    return ResourceRecord(
        stack=change.stack,
        type=change.type,
        label=change.label,
        target=change.target,
        native_id=change.native_id,
        properties=change.properties,
        desired_properties=change.desired_properties,
        version=0,
        deleted=False,
        command_id=change.command_id,
        created_at=utc_now(),
        managed=change.managed,
        origin=change.origin,
    )


async def _ordering_groups(tx: Tx, dialect: Dialect) -> OrderingGroups:
    """The group commit's ordering, from the migrated schema's own tables and foreign keys."""
    tables = [row["name"] for row in await tx.fetch(dialect.tables_sql)]
    references = [(row["child"], row["parent"]) for row in await tx.fetch(dialect.foreign_keys_sql)]
    return OrderingGroups.from_schema(tables, references)
