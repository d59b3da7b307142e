"""Synchronizer: reads every managed resource back from its cloud, so the inventory tells the truth.

After a create the agent would otherwise never look again: a bucket deleted by hand would stay in
the inventory and a re-apply would repair nothing. A sync run reads each resource through its
plugin exactly as a command's operation goes (the registry, the namespace's rate limit, retries of
recoverable errors and lost plugins, via ``ResourceUpdater`` with a READ) and compares:

- the same properties: nothing is written;
- different properties: a new version with ``origin = sync`` (who: the run, when: its time, what:
  the JSON patch from the last command's version, shown by ``formae status drift``). Its desired
  properties take the cloud's value for each top-level property that changed (references and
  read-only properties excepted), so that the planner, comparing the forma with the inventory *as
  synced*, plans the update that puts the forma's values back;
- NotFound: a tombstone with ``origin = sync``; the resource leaves the inventory and the next
  apply of its forma creates it again.

A sync never races a command (issue 9.1's rules): a resource that a running command is changing
is skipped (``Claims.changing`` for this agent's commands, the store's unfinished updates for
every agent's), the write of what was read holds a brief SYNC claim on the resource, and it is a
compare-and-append (``Datastore.observe``) that writes nothing if a command wrote a version since
the read. Reads never take the commands' in-flight slots: sync has its own, smaller, bound (64),
and while any command runs (``commands_running``) it reads at most ``TRICKLE`` at a time, so that
the plugin and the agent's event loop serve the command first.

One run at a time, in the order asked; runs are kept in memory (the last ``keep``) and in the
store (``sync_runs``, with a checkpoint: ``agent/sync_progress.py``), so ``GET /api/v1/sync/{id}``
answers on every agent sharing the store, and a run whose agent died is continued from its
checkpoint by the leader (``continue_orphans``, at each renewal of the leader lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from formae.agent.conflicts import Claimant, Claims, ConflictError, Scope
from formae.agent.rate_limiter import InFlightLimits, RateLimiter
from formae.agent.registry import PluginRegistry
from formae.agent.run_queue import BackgroundRun, RunQueue, RunState
from formae.agent.sync_progress import Prefix, after
from formae.agent.updater import ResourceUpdater, RetryPolicy
from formae.model import Operation, ResourceKey, is_reference
from formae.model.query import Query
from formae.model.resource_type import namespace_of
from formae.store import (
    Datastore,
    Observation,
    ResourceRecord,
    ResourceUpdateRecord,
    StoreError,
    SyncRunRecord,
    TargetRecord,
    UpdateState,
    VersionOrigin,
    new_id,
    utc_now,
)
from formae.telemetry.hooks import Telemetry
from formae.wire.types import ErrorCode, TargetInfo

log = logging.getLogger("formae.agent.synchronizer")

SYNC_POLICY = RetryPolicy(max_attempts=4, plugin_wait=1.0, call_timeout=30.0)
"""Reads are retried like any operation, but a sync does not wait long for a plugin that is away:
10,000 reads each waiting long for a restarting plugin would hold the run for minutes."""
NOT_FOUND = ErrorCode.NOT_FOUND.wire_name
TRICKLE = 2
"""Reads in flight while a command runs."""


class Outcome(StrEnum):
    """What one resource's read came to."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"
    GONE = "gone"
    SKIPPED = "skipped"
    """A command is changing it, its plugin is not registered, or a command wrote it meanwhile."""
    FAILED = "failed"


MAX_ERRORS = 20


@dataclass
class SyncRun(BackgroundRun):
    """One sync, as ``formae sync --watch`` follows it; ``errors`` are the first failures, in the user's
    terms ("net/FakeAWS::S3::Bucket/b: Throttling: …"). Failed: some reads failed (the plugin answered an
    error, or never answered); the others were applied."""

    query: str
    total: int = 0
    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))

    checkpoint: str | None = None
    """Where an earlier agent's run of it stopped (``sync_progress``): continue after this key."""
    done_before: dict[str, int] = field(default_factory=dict)
    """The counts stored with the checkpoint."""

    def count(self, outcome: Outcome, error: str | None = None) -> None:
        self.counts[outcome] += 1
        if error and len(self.errors) < MAX_ERRORS:
            self.errors.append(error)

    def record(
        self, owner: str, counts: dict[str, int] | None = None, checkpoint: str | None = None
    ) -> SyncRunRecord:
        """As the store keeps it: the prefix's counts and checkpoint while it runs, all at the end."""
        final = self.finished_at is not None
        return SyncRunRecord(
            id=self.id, query=self.query, state=self.state.value, total=self.total,
            counts={str(o): n for o, n in self.counts.items()} if final or counts is None else counts,
            errors=list(self.errors), created_at=self.created_at, updated_at=utc_now(),
            checkpoint=checkpoint, owner=owner, finished_at=self.finished_at,
        )  # fmt: skip

    @classmethod
    def of(cls, stored: SyncRunRecord) -> SyncRun:
        """A run as stored by any agent: to show, or to continue."""
        run = cls(
            stored.id, query=stored.query, total=stored.total,
            counts={o: stored.counts.get(o.value, 0) for o in Outcome},
            checkpoint=stored.checkpoint, done_before=dict(stored.counts),
            state=RunState(stored.state), created_at=stored.created_at,
            finished_at=stored.finished_at, errors=list(stored.errors),
        )  # fmt: skip
        if stored.finished_at is not None:
            run.finished.set()
        return run


@dataclass(frozen=True)
class _One:
    """One resource of a run to read, and where it sits in the run's order."""

    run: SyncRun
    record: ResourceRecord
    index: int
    progress: Prefix


class _Keep:
    """An UpdateSink that keeps nothing: a read changes no command, so its steps are not persisted."""

    async def save(self, update: ResourceUpdateRecord) -> None:
        return None


class Synchronizer:
    def __init__(
        self,
        store: Datastore,
        registry: PluginRegistry,
        limiter: RateLimiter,
        claims: Claims,
        *,
        policy: RetryPolicy = SYNC_POLICY,
        concurrency: int = 64,
        keep: int = 20,
        commands_running: Callable[[], bool] = lambda: False,
        telemetry: Telemetry | None = None,
        owner: str = "",
    ) -> None:
        self._telemetry = telemetry or Telemetry.off()
        self._store = store
        self._owner = owner
        """This agent's lease owner: the run's owner in the store."""
        self._registry = registry
        self._limiter = limiter
        self._claims = claims
        self._policy = policy
        self._concurrency = concurrency
        self._in_flight = InFlightLimits(concurrency)
        """Sync's own slots: 10,000 reads never take the slots a command's operations wait for."""
        self._runs: RunQueue[SyncRun] = RunQueue(
            "sync", self._execute, keep=keep, ended=self._telemetry.metrics.background_run_ended
        )
        self._commands_running = commands_running
        self._trickle = asyncio.Semaphore(TRICKLE)

    # ------------------------------------------------------------ asking

    def start(self, query: str = "") -> SyncRun:
        """Queue a sync of the resources matching ``query`` (all when empty); ValueError if it is bad."""
        Query.parse(query)
        queued = self._runs.queued(lambda r: r.query == query)
        if queued is not None:  # the same sync is waiting already: one run answers both
            return queued
        return self._runs.enqueue(SyncRun(new_id(), query=query))

    def latest(self) -> SyncRun | None:
        """The run in progress, or else the latest one: what the metrics show as progress."""
        return self._runs.latest()

    def get(self, run_id: str) -> SyncRun | None:
        return self._runs.get(run_id)

    async def lookup(self, run_id: str) -> SyncRun | None:
        """A run of this agent's, or as the store has it (another agent's)."""
        run = self.get(run_id)
        if run is not None:
            return run
        stored = await self._store.get_sync_run(run_id)
        return SyncRun.of(stored) if stored is not None else None

    async def continue_orphans(self) -> list[SyncRun]:
        """Queue again every unfinished run whose agent is gone, from its checkpoint: the leader's job."""
        now = self._store.now()
        live = {a.owner for a in await self._store.list_agents() if a.alive(now)}
        continued = []
        for stored in await self._store.unfinished_sync_runs():
            if stored.owner in live or stored.owner == self._owner or self.get(stored.id) is not None:
                continue
            run = SyncRun.of(replace(stored, state=RunState.QUEUED.value))
            log.warning(
                "continuing sync %s from %s (its agent %s is gone)", run.id, run.checkpoint, stored.owner
            )
            await self._store.save_sync_run(run.record(self._owner, stored.counts, stored.checkpoint))
            continued.append(self._runs.enqueue(run))
        return continued

    async def sync(self, query: str = "") -> SyncRun:
        """Sync and wait for the end: what the scheduler and the auto-reconcile policy call."""
        run = self.start(query)
        await run.finished.wait()
        return run

    async def run(self) -> None:
        """Serve queued runs, one at a time, for as long as the agent runs."""
        await self._runs.serve()

    # ------------------------------------------------------------ one run

    async def _execute(self, run: SyncRun) -> None:
        try:
            await self._execute_stored(run)
        except Exception as error:  # the queue fails the run; the store must say so too
            with contextlib.suppress(StoreError):
                failed = replace(
                    run, state=RunState.FAILED, finished_at=utc_now(), errors=[*run.errors, str(error)]
                )
                await self._store.save_sync_run(failed.record(self._owner))
            raise

    async def _execute_stored(self, run: SyncRun) -> None:
        run.move(RunState.RUNNING)
        selected = Query.parse(run.query)
        current = await self._store.current_resources()
        records = [r for r in current if r.managed and selected.matches(r.key, r.target)]
        todo = after([r.key for r in records], run.checkpoint)
        run.total = sum(run.done_before.values()) + len(todo)
        progress = Prefix([records[i].key for i in todo], run.done_before)
        await self._store.save_sync_run(run.record(self._owner, progress.counts, run.checkpoint))
        targets = {t.label: t for t in await self._store.list_targets()}
        busy = set(await self._store.keys_being_changed())
        namespaces = set(self._registry.namespaces())
        slots = asyncio.Semaphore(self._concurrency)
        async with asyncio.TaskGroup() as reads:
            for index, at in enumerate(todo):
                await slots.acquire()
                one = _One(run, records[at], index, progress)
                reads.create_task(self._sync_one(one, targets, busy, namespaces, slots))
        run.move(RunState.FAILED if run.counts[Outcome.FAILED] else RunState.SUCCESS)
        await self._store.save_sync_run(run.record(self._owner))
        counts = ", ".join(f"{n} {o}" for o, n in run.counts.items() if n)
        log.info("sync %s finished %s: %s of %d", run.id, run.state, counts or "nothing", run.total)

    async def _sync_one(
        self,
        one: _One,
        targets: dict[str, TargetRecord],
        busy: set[ResourceKey],
        namespaces: set[str],
        slots: asyncio.Semaphore,
    ) -> None:
        try:
            outcome, error = await self._outcome(one.run, one.record, targets, busy, namespaces)
            one.run.count(outcome, error)
            if one.progress.done(one.index, outcome):
                record = one.run.record(self._owner, one.progress.counts, one.progress.checkpoint)
                await self._store.save_sync_run(record)
        finally:
            slots.release()

    async def _outcome(
        self,
        run: SyncRun,
        record: ResourceRecord,
        targets: dict[str, TargetRecord],
        busy: set[ResourceKey],
        namespaces: set[str],
    ) -> tuple[Outcome, str | None]:
        namespace = namespace_of(record.type)
        if record.key in busy or self._claims.changing(record.key) is not None:
            return Outcome.SKIPPED, None
        if namespace not in namespaces:
            return Outcome.SKIPPED, f"{record.key}: no plugin registered for namespace {namespace}"
        async with self._trickle if self._commands_running() else contextlib.nullcontext():
            read = await self._read(run, record, targets.get(record.target))
        if read.state is not UpdateState.SUCCESS and read.error_code != NOT_FOUND:
            return Outcome.FAILED, f"{record.key}: {read.error_code}: {read.error}"
        if read.state is not UpdateState.SUCCESS:
            observed = replace(record, deleted=True, command_id=f"sync {run.id}", origin=VersionOrigin.SYNC)
            return await self._commit(run, record, observed, Outcome.GONE)
        properties = read.progress.properties if read.progress else None
        if not isinstance(properties, dict) or _same(properties, record.properties):
            return Outcome.UNCHANGED, None
        observed = self._observed(run, record, properties)
        return await self._commit(run, record, observed, Outcome.CHANGED)

    async def _read(
        self, run: SyncRun, record: ResourceRecord, target: TargetRecord | None
    ) -> ResourceUpdateRecord:
        namespace = namespace_of(record.type)
        info = (
            TargetInfo(target.label, target.namespace, dict(target.config))
            if target
            else TargetInfo(record.target, namespace)
        )
        update = ResourceUpdateRecord(
            command_id=f"sync {run.id}",
            update_id=f"read:{record.key}",
            operation=Operation.READ,
            stack=record.stack,
            type=record.type,
            label=record.label,
            target=record.target,
            state=UpdateState.PENDING,
            updated_at=utc_now(),
            native_id=record.native_id,
        )
        reader = ResourceUpdater(
            self._registry,
            self._limiter,
            _Keep(),
            self._policy,
            info,
            None,
            in_flight=self._in_flight.of(namespace),
            telemetry=self._telemetry,
        )
        return await reader.run(update)

    def _observed(self, run: SyncRun, record: ResourceRecord, properties: dict[str, Any]) -> ResourceRecord:
        schema = self._registry.schema(record.type)
        read_only = frozenset(schema.read_only) if schema else frozenset()
        desired = synced_desired(record.desired_properties, record.properties, properties, read_only)
        return replace(
            record,
            properties=properties,
            desired_properties=desired,
            command_id=f"sync {run.id}",
            origin=VersionOrigin.SYNC,
        )

    async def _commit(
        self, run: SyncRun, record: ResourceRecord, observed: ResourceRecord, outcome: Outcome
    ) -> tuple[Outcome, str | None]:
        """Write what was read, unless a command has started on the resource or written it since."""
        try:
            claim = self._claims.try_claim(Claimant.sync(run.id), Scope.of(resources=[record.key]))
        except ConflictError:
            return Outcome.SKIPPED, None
        with claim:
            if record.key in await self._store.keys_being_changed():
                return Outcome.SKIPPED, None
            [written] = await self._store.observe([Observation(record.version, observed)])
        if not written:
            return Outcome.SKIPPED, None
        what = "deleted in the cloud" if observed.deleted else "changed in the cloud"
        log.info("sync %s: %s %s", run.id, record.key, what)
        return outcome, None


def synced_desired(
    desired: dict[str, Any], before: dict[str, Any], after: dict[str, Any], read_only: frozenset[str]
) -> dict[str, Any]:
    """The desired properties with the cloud's value for every top-level property that changed.

    A property the user wrote as a reference keeps the reference (the planner resolves and
    compares it); a read-only one is the cloud's business and never part of the desire.
    """
    synced = dict(desired)
    for name in before.keys() | after.keys():
        if name in read_only or is_reference(desired.get(name)) or _same(before.get(name), after.get(name)):
            continue
        if name in after:
            synced[name] = after[name]
        else:
            synced.pop(name, None)
    return synced


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON, so ``1`` and ``1.0`` differ as they do for the cloud, and key order does not."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
