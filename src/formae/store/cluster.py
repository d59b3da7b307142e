"""What agents sharing one database coordinate through it: who is alive, who leads, who claims what.

A mixin of ``Datastore`` (like ``api_tokens.py``) so that the cluster's queries sit together. No
cluster protocol of our own: PostgreSQL is the consistent engine, every decision is one
transaction, and every lease is a row with an expiry timed by **the database's clock**
(``Datastore.now``: the agent's clock corrected by the offset measured against the server's),
so agents whose clocks disagree still agree on when a lease ends.

- ``agents``: one row per home (its stable id), renewed by its agent; its API URL and plugin
  address let a colleague list every agent (``formae status agent``, join tokens).
- ``leader_leases``: one row per singleton (``schedules``); its generation grows with each change
  of hands.
- ``command_claims``: what each command may change, written in the transaction that creates the
  command, after a check of every live claim under a transaction-scoped advisory lock, so two
  agents can never admit overlapping commands. The agent decides (``admit``); the store makes
  the decision and the write one atomic step.
- ``sync_runs``: a sync's progress (a checkpoint key and the counts up to it), so that the next
  leader continues a run whose leader died.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from formae.store import _rows as rows
from formae.store._dialect import Dialect, Row, Tx
from formae.store.group_commit import GroupCommitter
from formae.store.records import INCOMPLETE_COMMAND_STATES, Command, utc_now

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """An agent as its row shows it; alive while ``expires_at`` is in the future."""

    id: str
    owner: str
    host: str
    pid: int
    version: str
    api_url: str
    plugin_address: str
    started_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def alive(self, now: datetime) -> bool:
        return self.expires_at > now


class ClaimPartKind(StrEnum):
    STACK = "stack"
    RESOURCE = "resource"
    EVERYTHING = "everything"


@dataclass(frozen=True, slots=True)
class ClaimPart:
    """One part of a command's claim: a whole stack, one resource, or everything."""

    kind: ClaimPartKind
    stack: str | None = None
    type: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class StoredClaim:
    """A live claim: the command's position (smallest seq: claims are granted in that order) and parts."""

    command_id: str
    position: int
    parts: tuple[ClaimPart, ...]


Admit = Callable[[list[StoredClaim]], Command | None]
"""Given every live claim, the command to store with its claim, or None to store nothing."""


@dataclass(frozen=True, slots=True)
class SyncRunRecord:
    id: str
    query: str
    state: str
    total: int
    counts: dict[str, int]
    errors: list[str]
    created_at: datetime
    updated_at: datetime
    checkpoint: str | None = None
    """Every resource whose key (tab-joined) sorts at or before this one has been read."""
    owner: str | None = None
    finished_at: datetime | None = None


_AGENT_COLUMNS = (
    "id", "owner", "host", "pid", "version", "api_url", "plugin_address",
    "started_at", "renewed_at", "expires_at",
)  # fmt: skip
_UPSERT_AGENT = rows.insert_sql("agents", _AGENT_COLUMNS, ("id",))
_LIVE_CLAIMS = (
    "SELECT k.* FROM command_claims k JOIN commands c ON c.id = k.command_id"
    " WHERE c.state IN ({states}) ORDER BY k.seq"
)
_INSERT_CLAIM = (
    "INSERT INTO command_claims (command_id, kind, stack, type, label) VALUES ($1, $2, $3, $4, $5)"
)
_INSERT_COMMAND = rows.insert_sql("commands", rows.COMMAND_COLUMNS)
_LEADER_ROW = (
    "INSERT INTO leader_leases (name, owner, generation, expires_at) VALUES ($1, NULL, 0, NULL)"
    " ON CONFLICT (name) DO NOTHING"
)
_TAKE_LEADER = (
    "UPDATE leader_leases SET owner = $2, expires_at = $3,"
    " generation = CASE WHEN owner = $2 THEN generation ELSE generation + 1 END"
    " WHERE name = $1 AND (owner IS NULL OR owner = $2 OR expires_at < $4) RETURNING generation"
)
_SYNC_COLUMNS = (
    "id", "query", "state", "total", "counts", "errors", "checkpoint", "owner",
    "created_at", "updated_at", "finished_at",
)  # fmt: skip
_UPSERT_SYNC = rows.insert_sql("sync_runs", _SYNC_COLUMNS, ("id",))


@dataclass
class _Clock:
    offset: timedelta = field(default_factory=timedelta)


class ClusterStore:
    """What ``Datastore`` provides to agents sharing it; relies on its committer, reader and dialect."""

    _dialect: Dialect
    _committer: GroupCommitter
    _read: Callable[[str, Callable[[Tx], Awaitable[Any]]], Awaitable[Any]]
    _clock: _Clock

    # -- the shared clock --------------------------------------------------------------------

    @property
    def shared(self) -> bool:
        """Whether agents of other homes may share this store (PostgreSQL) or not (SQLite)."""
        return self._dialect.shared

    def now(self) -> datetime:
        """The database's time, as last measured: what every lease is timed by."""
        return utc_now() + self._clock.offset

    async def measure_clock(self) -> timedelta:
        """Measure the offset of the database's clock from ours (half the round trip is its error)."""
        sql = self._dialect.clock_sql
        if sql is None:
            return self._clock.offset
        before = utc_now()
        found = await self._read("reading the database's clock", lambda tx: tx.fetch(sql))
        after = utc_now()
        server = self._dialect.decode_time(found[0]["now"])
        self._clock.offset = server - (before + (after - before) / 2)
        return self._clock.offset

    def _until(self, seconds: float) -> Any:
        return self._dialect.encode_time(self.now() + timedelta(seconds=seconds))

    # -- agents ------------------------------------------------------------------------------

    async def register_agent(self, agent: AgentRecord, *, exclusive: bool) -> AgentRecord | None:
        """Write this agent's row; with ``exclusive``, only if no other home's agent is alive.

        Returns the live agent that refused it (nothing written), or None once written. Check and
        write are one transaction, so two agents starting at once cannot both pass.
        """
        d = self._dialect
        params = _agent_params(d, agent)
        now = d.encode_time(self.now())

        async def write(tx: Tx) -> list[AgentRecord]:
            if exclusive:
                others = await tx.fetch(
                    "SELECT * FROM agents WHERE id <> $1 AND expires_at > $2", agent.id, now
                )
                if others:
                    return [_agent_from_row(d, others[0])]
            await tx.execute(_UPSERT_AGENT, *params)
            return []

        refused: list[AgentRecord] = await self._committer.submit(write)
        return refused[0] if refused else None

    async def renew_agent(self, agent_id: str, owner: str, seconds: float) -> bool:
        """Extend this agent's row; False if another run of its home has taken it over."""
        d = self._dialect
        sql = "UPDATE agents SET renewed_at = $3, expires_at = $4 WHERE id = $1 AND owner = $2 RETURNING id"
        now, until = d.encode_time(self.now()), self._until(seconds)

        async def write(tx: Tx) -> bool:
            return bool(await tx.fetch(sql, agent_id, owner, now, until))

        renewed: bool = await self._committer.submit(write)
        return renewed

    async def retire_agent(self, agent_id: str, owner: str) -> None:
        """A clean stop: the row expires now, and nothing of the agent is waited for."""
        d = self._dialect
        now = d.encode_time(self.now())
        sql = "UPDATE agents SET expires_at = $3 WHERE id = $1 AND owner = $2"
        await self._committer.submit(lambda tx: tx.execute(sql, agent_id, owner, now))

    async def list_agents(self) -> list[AgentRecord]:
        d = self._dialect

        async def query(tx: Tx) -> list[AgentRecord]:
            return [_agent_from_row(d, r) for r in await tx.fetch("SELECT * FROM agents ORDER BY id")]

        found: list[AgentRecord] = await self._read("reading agents", query)
        return found

    # -- the leader lease --------------------------------------------------------------------

    async def acquire_leadership(self, name: str, owner: str, seconds: float) -> int | None:
        """Take or keep the lease ``name`` (free, expired or ours): its generation, or None."""
        d = self._dialect
        now, until = d.encode_time(self.now()), self._until(seconds)

        async def write(tx: Tx) -> list[Row]:
            await tx.execute(_LEADER_ROW, name)
            return await tx.fetch(_TAKE_LEADER, name, owner, until, now)

        found: list[Row] = await self._committer.submit(write)
        return int(found[0]["generation"]) if found else None

    async def release_leadership(self, name: str, owner: str) -> None:
        sql = "UPDATE leader_leases SET owner = NULL, expires_at = NULL WHERE name = $1 AND owner = $2"
        await self._committer.submit(lambda tx: tx.execute(sql, name, owner))

    async def leader(self, name: str) -> tuple[str | None, int, datetime | None]:
        """Who holds ``name`` (owner, generation, expiry); (None, 0, None) if nobody ever did."""
        d = self._dialect

        async def query(tx: Tx) -> list[Row]:
            return await tx.fetch("SELECT * FROM leader_leases WHERE name = $1", name)

        found: list[Row] = await self._read("reading the leader lease", query)
        if not found:
            return None, 0, None
        row = found[0]
        return row["owner"], int(row["generation"]), d.decode_optional_time(row["expires_at"])

    # -- command claims ----------------------------------------------------------------------

    async def create_claimed_command(self, parts: Sequence[ClaimPart], admit: Admit) -> Command | None:
        """Store the command ``admit`` returns with its claim, in one transaction; None: nothing stored.

        ``admit`` sees every live claim (of commands not yet final), checked under the claims lock.
        """
        d = self._dialect

        async def write(tx: Tx) -> Command | None:
            command = admit(await self._live_claims_locked(tx))
            if command is not None:
                await tx.execute(_INSERT_COMMAND, *rows.command_params(d, command))
                await tx.executemany(_INSERT_CLAIM, [_claim_params(command.id, p) for p in parts])
            return command

        created: Command | None = await self._committer.submit(write)
        return created

    async def widen_claim(
        self, command_id: str, parts: Sequence[ClaimPart], admit: Callable[[list[StoredClaim]], bool]
    ) -> bool:
        """Add ``parts`` to a command's claim if ``admit`` agrees, seeing every live claim; whether added."""

        async def write(tx: Tx) -> bool:
            if not admit(await self._live_claims_locked(tx)):
                return False
            await tx.executemany(_INSERT_CLAIM, [_claim_params(command_id, p) for p in parts])
            return True

        added: bool = await self._committer.submit(write)
        return added

    async def ensure_claim(self, command_id: str, parts: Sequence[ClaimPart]) -> None:
        """Give a command stored before claims were kept its claim (a store upgraded with work left)."""

        async def write(tx: Tx) -> None:
            found = await tx.fetch(
                "SELECT 1 AS hit FROM command_claims WHERE command_id = $1 LIMIT 1", command_id
            )
            if not found:
                await tx.executemany(_INSERT_CLAIM, [_claim_params(command_id, p) for p in parts])

        await self._committer.submit(write)

    async def live_claims(self) -> list[StoredClaim]:
        """Every claim of a command not yet final, in the order they were taken."""
        found: list[StoredClaim] = await self._read("reading command claims", self._live_claims)
        return found

    async def delete_command(self, command_id: str) -> None:
        """Forget a command refused after its claim was stored (its updates and claim go with it)."""
        await self._committer.submit(lambda tx: tx.execute("DELETE FROM commands WHERE id = $1", command_id))

    async def _live_claims_locked(self, tx: Tx) -> list[StoredClaim]:
        if self._dialect.claims_lock:
            await tx.execute(self._dialect.claims_lock)
        return await self._live_claims(tx)

    async def _live_claims(self, tx: Tx) -> list[StoredClaim]:
        states = [s.value for s in INCOMPLETE_COMMAND_STATES]
        marks = ", ".join(f"${i}" for i in range(1, len(states) + 1))
        by_command: dict[str, list[Row]] = {}
        for row in await tx.fetch(_LIVE_CLAIMS.format(states=marks), *states):
            by_command.setdefault(row["command_id"], []).append(row)
        claims = [
            StoredClaim(command_id, int(found[0]["seq"]), tuple(_claim_from_row(r) for r in found))
            for command_id, found in by_command.items()
        ]
        return sorted(claims, key=lambda c: c.position)

    # -- sync runs ---------------------------------------------------------------------------

    async def save_sync_run(self, run: SyncRunRecord) -> None:
        params = _sync_params(self._dialect, run)
        await self._committer.submit(lambda tx: tx.execute(_UPSERT_SYNC, *params))

    async def get_sync_run(self, run_id: str) -> SyncRunRecord | None:
        found = await self._sync_runs("SELECT * FROM sync_runs WHERE id = $1", run_id)
        return found[0] if found else None

    async def unfinished_sync_runs(self) -> list[SyncRunRecord]:
        """Runs queued or running, oldest first: what a new leader continues."""
        return await self._sync_runs(
            "SELECT * FROM sync_runs WHERE finished_at IS NULL ORDER BY created_at, id"
        )

    async def _sync_runs(self, sql: str, *args: object) -> list[SyncRunRecord]:
        d = self._dialect

        async def query(tx: Tx) -> list[SyncRunRecord]:
            return [_sync_from_row(d, r) for r in await tx.fetch(sql, *args)]

        found: list[SyncRunRecord] = await self._read("reading sync runs", query)
        return found


def _agent_params(d: Dialect, a: AgentRecord) -> tuple[Any, ...]:
    return (
        a.id, a.owner, a.host, a.pid, a.version, a.api_url, a.plugin_address,
        d.encode_time(a.started_at), d.encode_time(a.renewed_at), d.encode_time(a.expires_at),
    )  # fmt: skip


def _agent_from_row(d: Dialect, r: Row) -> AgentRecord:
    return AgentRecord(
        id=r["id"],
        owner=r["owner"],
        host=r["host"],
        pid=int(r["pid"]),
        version=r["version"],
        api_url=r["api_url"],
        plugin_address=r["plugin_address"],
        started_at=d.decode_time(r["started_at"]),
        renewed_at=d.decode_time(r["renewed_at"]),
        expires_at=d.decode_time(r["expires_at"]),
    )


def _claim_params(command_id: str, part: ClaimPart) -> tuple[Any, ...]:
    return (command_id, part.kind.value, part.stack, part.type, part.label)


def _claim_from_row(r: Row) -> ClaimPart:
    return ClaimPart(ClaimPartKind(r["kind"]), r["stack"], r["type"], r["label"])


def _sync_params(d: Dialect, s: SyncRunRecord) -> tuple[Any, ...]:
    return (
        s.id, s.query, s.state, s.total, rows.encode_json(s.counts), rows.encode_json(s.errors),
        s.checkpoint, s.owner, d.encode_time(s.created_at), d.encode_time(s.updated_at),
        d.encode_time(s.finished_at),
    )  # fmt: skip


def _sync_from_row(d: Dialect, r: Row) -> SyncRunRecord:
    return SyncRunRecord(
        id=r["id"],
        query=r["query"],
        state=r["state"],
        total=int(r["total"]),
        counts=rows.decode_json(r["counts"]),
        errors=rows.decode_json(r["errors"]),
        checkpoint=r["checkpoint"],
        owner=r["owner"],
        created_at=d.decode_time(r["created_at"]),
        updated_at=d.decode_time(r["updated_at"]),
        finished_at=d.decode_optional_time(r["finished_at"]),
    )
