"""ChangesetExecutor: runs one command's resource updates in dependency order.

Ready updates start as tasks up to ``STARTED_PER_IN_FLIGHT`` times each namespace's in-flight bound
(the rest wait in a queue of their namespace, costing only their plan: 60,000 ready updates as
suspended tasks were hundreds of MB); the rate limiter and the in-flight bound decide how many
reach the plugins. Finished updates report through a queue, so each completion costs O(its
dependants), never a scan over the changeset. A failure fails its dependants with
DependencyFailure and lets the rest finish; a cancel starts nothing new and lets in-flight work end.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypeVar

from formae.agent.rate_limiter import InFlightLimits, RateLimiter
from formae.agent.registry import PluginRegistry
from formae.agent.store_outage import Persist
from formae.agent.updater import ResourceUpdater, RetryPolicy
from formae.model import Operation, Reference, ResourceKey, resolve_references
from formae.model.resource_type import namespace_of
from formae.plan.changeset import PlannedUpdate
from formae.plan.dag import Dag, NodeState
from formae.race import Interrupted, unless_set
from formae.store import (
    Datastore,
    Fence,
    NewResourceVersion,
    ResourceDeletion,
    ResourceUpdateRecord,
    UpdateState,
    utc_now,
)
from formae.telemetry.hooks import Telemetry
from formae.wire.types import TargetInfo

log = logging.getLogger("formae.agent.executor")

DEPENDENCY_FAILURE = "DependencyFailure"
_SENT = frozenset({UpdateState.DISPATCHING, UpdateState.IN_PROGRESS, UpdateState.WAITING_RETRY})
"""States of an update a plugin may be working on: never dropped by a cancel."""
UNRESOLVED_REFERENCE = "UnresolvedReference"


STARTED_PER_IN_FLIGHT = 4
"""Update tasks alive per namespace, as a multiple of its in-flight bound: enough that its plugins
never wait for the agent to start one (an update between calls persists a step, or waits a retry)."""

T = TypeVar("T")


async def _directly(operation: Callable[[], Awaitable[T]], /) -> T:
    return await operation()


class UnresolvedReference(Exception):
    pass


@dataclass(frozen=True)
class ExecutionResult:
    succeeded: int
    failed: int
    canceled: int

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.canceled == 0


class Inventory:
    """The properties of every managed resource, as references read them during one command."""

    def __init__(self, properties: dict[ResourceKey, dict[str, Any]]) -> None:
        self._properties = properties

    def set(self, key: ResourceKey, properties: dict[str, Any] | None) -> None:
        if properties is None:
            self._properties.pop(key, None)
        else:
            self._properties[key] = properties

    def resolve(self, properties: dict[str, Any]) -> dict[str, Any]:
        resolved: dict[str, Any] = resolve_references(properties, self._value)
        return resolved

    def resolve_value(self, value: Any) -> Any:
        return resolve_references(value, self._value)

    def _value(self, reference: Reference) -> Any:
        properties = self._properties.get(ResourceKey(*reference.target_key))
        if properties is None:
            raise UnresolvedReference(f"{reference.stack}/{reference.type}/{reference.label} does not exist")
        if reference.property not in properties:
            raise UnresolvedReference(
                f"{reference.stack}/{reference.type}/{reference.label} has no property {reference.property!r}"
            )
        return properties[reference.property]


class _CompletingSink:
    """Persists each step of one update; the final success and the inventory change in one transaction."""

    def __init__(
        self,
        store: Datastore,
        planned: PlannedUpdate,
        inventory: Inventory,
        sent: dict[str, Any] | None,
        persist: Persist,
        ended: Callable[[ResourceUpdateRecord], None],
        fence: Fence | None = None,
    ) -> None:
        self._store = store
        self._ended = ended
        self._persist = persist
        self._fence = fence
        self._planned = planned
        self._inventory = inventory
        self._sent = sent
        """The properties the plugin was sent (references resolved): kept if it reports none back."""

    async def save(self, update: ResourceUpdateRecord) -> None:
        await self._save(update)
        if update.state.is_final:
            self._ended(update)

    async def _save(self, update: ResourceUpdateRecord) -> None:
        if update.state is not UpdateState.SUCCESS:
            await self._persist(partial(self._store.save_progress, update, fence=self._fence))
            return
        if update.operation == "delete":
            deletion = ResourceDeletion.of(update.key, update.command_id)
            await self._persist(partial(self._store.record_update, update, deletion, fence=self._fence))
            self._inventory.set(update.key, None)
            return
        reported = update.progress.properties if update.progress else None
        properties = dict(reported) if isinstance(reported, dict) else dict(self._sent or {})
        version = NewResourceVersion(
            stack=update.stack,
            type=update.type,
            label=update.label,
            target=update.target,
            native_id=update.native_id,
            properties=properties,
            desired_properties=self._planned.desired_properties or {},
            command_id=update.command_id,
            adopts=self._planned.adopt or update.operation == "read",
        )
        await self._persist(partial(self._store.record_update, update, version, fence=self._fence))
        self._inventory.set(update.key, properties)


class ChangesetExecutor:
    def __init__(
        self,
        *,
        dag: Dag,
        records: Mapping[str, ResourceUpdateRecord],
        store: Datastore,
        registry: PluginRegistry,
        limiter: RateLimiter,
        policy: RetryPolicy,
        inventory: Inventory,
        cancel: asyncio.Event,
        in_flight: InFlightLimits,
        persist: Persist | None = None,
        telemetry: Telemetry | None = None,
        fence: Fence | None = None,
        before_call: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._telemetry = telemetry or Telemetry.off()
        self._fence = fence
        """The command's lease: every write carries it, so none lands once another agent took over."""
        self._before_call = before_call
        self._dag = dag
        self._records = dict(records)
        self._store = store
        self._registry = registry
        self._limiter = limiter
        self._policy = policy
        self._inventory = inventory
        self._cancel = cancel
        self._in_flight = in_flight
        self._persist: Persist = persist or _directly
        """Every store write goes through it: the runner's rides out a datastore outage."""
        self._finished: asyncio.Queue[tuple[str, UpdateState]] = asyncio.Queue()
        self._running = 0
        self._canceled = False
        self._queued: dict[str, deque[PlannedUpdate]] = defaultdict(deque)
        """Ready updates not started yet, by namespace (still pending in the DAG)."""
        self._started: Counter[str] = Counter()
        """Update tasks alive, by namespace."""

    async def run(self) -> ExecutionResult:
        async with asyncio.TaskGroup() as group:
            while not self._dag.is_done():
                await self._start_ready(group)
                if self._cancel.is_set():
                    await self._cancel_pending()
                if self._running == 0 and self._finished.empty():
                    await self._cancel_stranded()
                    break
                await self._absorb(await self._next_finished())
                while not self._finished.empty():
                    await self._absorb(self._finished.get_nowait())
        return self._result()

    async def _next_finished(self) -> tuple[str, UpdateState]:
        """The next finished update; wakes early when a cancel arrives so pending work is dropped at once."""
        try:
            return await unless_set(self._finished.get(), self._cancel)
        except Interrupted:  # nothing was taken from the queue: an interrupted get() leaves it whole
            await self._cancel_pending()
            return await self._finished.get()

    async def _start_ready(self, group: asyncio.TaskGroup) -> None:
        """Start what is ready, up to each namespace's bound; once canceling, only what a crashed
        agent had already sent to a plugin.

        An update a previous agent left Dispatching or InProgress may exist in the cloud: it is
        always carried to its end, so the inventory learns what the cloud holds. Updates never
        started are canceled instead.
        """
        for planned in self._dag.take_ready():
            self._queued[namespace_of(planned.key.type)].append(planned)
        canceled: list[ResourceUpdateRecord | None] = []
        for namespace, queued in self._queued.items():
            bound = STARTED_PER_IN_FLIGHT * self._in_flight.bound(namespace)
            while queued and self._started[namespace] < bound:
                self._start(group, queued.popleft(), canceled)
        await self._save_all(canceled)

    def _start(
        self, group: asyncio.TaskGroup, planned: PlannedUpdate, canceled: list[ResourceUpdateRecord | None]
    ) -> None:
        if self._dag.state(planned.id) is not NodeState.PENDING:  # canceled while it waited its turn
            return
        record = self._records[planned.id]
        # canceled before a restart, or not started when the cancel came: never run
        if record.state is UpdateState.CANCELED or (
            self._cancel.is_set() and record.state is UpdateState.PENDING
        ):
            self._dag.mark_canceled(planned.id)
            canceled.append(self._canceled_record(planned.id))
            return
        self._dag.mark_started(planned.id)
        if record.state.is_final:  # finished before a restart: only its outcome is replayed
            self._finished.put_nowait((planned.id, record.state))
            return
        self._running += 1
        self._started[namespace_of(planned.key.type)] += 1
        group.create_task(self._run_update(planned, record), name=f"update {planned.id}")

    async def _run_update(self, planned: PlannedUpdate, record: ResourceUpdateRecord) -> None:
        state = UpdateState.FAILED
        try:
            state = (await self._update(planned, record)).state
        finally:
            self._running -= 1
            self._started[namespace_of(planned.key.type)] -= 1
            self._finished.put_nowait((planned.id, state))

    async def _update(self, planned: PlannedUpdate, record: ResourceUpdateRecord) -> ResourceUpdateRecord:
        in_flight = self._in_flight.of(namespace_of(planned.key.type))
        try:
            properties = self._properties(planned)
        except UnresolvedReference as error:
            return await self._fail(record, UNRESOLVED_REFERENCE, str(error))
        target = TargetInfo(planned.target.label, planned.target.namespace, dict(planned.target.config))
        sink = _CompletingSink(
            self._store, planned, self._inventory, properties, self._persist, self._ended, self._fence
        )
        updater = ResourceUpdater(
            self._registry,
            self._limiter,
            sink,
            self._policy,
            target,
            properties,
            in_flight=in_flight,
            telemetry=self._telemetry,
            before_call=self._before_call,
        )
        return await updater.run(replace(record, patch=self._patch(planned)))

    def _patch(self, planned: PlannedUpdate) -> list[Any] | None:
        """The planned JSON Patch with the values of its references filled in, as the plugin needs it."""
        if planned.patch is None:
            return None
        resolved: list[Any] = self._inventory.resolve_value(planned.patch)
        return resolved

    def _properties(self, planned: PlannedUpdate) -> dict[str, Any] | None:
        if planned.operation is Operation.DELETE or planned.desired_properties is None:
            return None
        return self._inventory.resolve(planned.desired_properties)

    async def _absorb(self, finished: tuple[str, UpdateState]) -> None:
        id, state = finished
        if state is UpdateState.SUCCESS:
            self._dag.mark_succeeded(id)
        else:
            dependants = self._dag.mark_failed(id)
            await self._save_all(
                self._failed(self._records[dependant], DEPENDENCY_FAILURE, f"{id} failed")
                for dependant in dependants
            )

    async def _cancel_pending(self) -> None:
        """Once: cancel every update not started, except those already sent to a plugin (see _start_ready)."""
        if self._canceled:
            return
        self._canceled = True
        sent = {id for id, record in self._records.items() if record.state in _SENT}
        await self._save_all(self._canceled_record(id) for id in self._dag.mark_canceled_pending(keep=sent))

    async def _cancel_stranded(self) -> None:
        """Nothing runs and nothing can start: what still waits depends on a canceled update."""
        await self._save_all(self._canceled_record(id) for id in self._dag.mark_canceled_pending())

    def _canceled_record(self, id: str) -> ResourceUpdateRecord | None:
        """The update as canceled, or None when it had already ended before a restart."""
        record = self._records[id]
        if record.state.is_final:
            return None
        canceled = replace(record, state=UpdateState.CANCELED, updated_at=utc_now())
        self._records[id] = canceled
        return canceled

    async def _fail(self, record: ResourceUpdateRecord, code: str, message: str) -> ResourceUpdateRecord:
        failed = self._failed(record, code, message)
        await self._persist(partial(self._store.save_progress, failed, fence=self._fence))
        self._ended(failed)
        return failed

    def _ended(self, record: ResourceUpdateRecord) -> None:
        """The one hook for every update of the command that ends, whoever ended it."""
        self._telemetry.metrics.update_ended(record.operation, record.state)

    def _failed(self, record: ResourceUpdateRecord, code: str, message: str) -> ResourceUpdateRecord:
        failed = replace(
            record, state=UpdateState.FAILED, error_code=code, error=message, updated_at=utc_now()
        )
        self._records[record.update_id] = failed
        return failed

    async def _save_all(self, records: Iterable[ResourceUpdateRecord | None]) -> None:
        """Store many steps at once, so the group committer writes them in a few transactions.

        One commit each would make canceling 10,000 updates, or failing the dependants of a root,
        take seconds on SQLite and longer on PostgreSQL.
        """
        async with asyncio.TaskGroup() as writes:
            for record in records:
                if record is not None:
                    writes.create_task(
                        self._persist(partial(self._store.save_progress, record, fence=self._fence))
                    )
                    self._ended(record)

    def _result(self) -> ExecutionResult:
        counts = {state: 0 for state in NodeState}
        for id in self._records:
            counts[self._dag.state(id)] += 1
        return ExecutionResult(
            succeeded=counts[NodeState.SUCCEEDED],
            failed=counts[NodeState.FAILED],
            canceled=counts[NodeState.CANCELED] + counts[NodeState.PENDING],
        )
