"""CommandRunner: turns submitted formas into commands, runs them, and resumes them after a crash.

Submission is where bad input is stopped: the forma is validated, every namespace must have a
plugin, the plan must be acyclic and a reconcile must not overwrite out-of-band changes unless
forced. A command that passes is persisted with all its resource updates before it starts, so
the agent can die at any moment after answering and still finish the work when it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from formae.agent.drift import out_of_band_changes
from formae.agent.executor import ChangesetExecutor, Inventory
from formae.agent.plugin_overview import PluginOverview
from formae.agent.rate_limiter import InFlightLimits, RateLimiter
from formae.agent.registry import PluginRegistry
from formae.agent.updater import RetryPolicy
from formae.forma import FormaError, forma_from_json
from formae.model import Forma, ResourceKey, Target
from formae.model.query import Query
from formae.plan import Changeset, ManagedResource, Mode, PlannedUpdate, TypeSchema, plan, plan_destroy
from formae.plan.changeset import Operation as PlanOperation
from formae.plan.dag import Dag, DagError
from formae.plan.planner import PlanError
from formae.store import (
    Command,
    CommandKind,
    CommandMode,
    CommandState,
    Datastore,
    Operation,
    ResourceRecord,
    ResourceUpdateRecord,
    StackRecord,
    StoreError,
    TargetRecord,
    UpdateState,
    utc_now,
)

log = logging.getLogger("formae.agent.commands")


class Rejected(Exception):
    """The command cannot be accepted as submitted; ``problems`` say why, in the user's terms."""

    def __init__(self, problems: list[str], *, conflict: bool = False, unavailable: bool = False) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.conflict = conflict
        """True when the forma is fine but the current state forbids it (needs --force)."""
        self.unavailable = unavailable
        """True when the command is fine but a namespace it needs has no healthy plugin now."""


@dataclass(frozen=True)
class _Plan:
    """What running a command needs: built at submission, or rebuilt from the store on resume."""

    command: Command
    dag: Dag
    records: dict[str, ResourceUpdateRecord]


@dataclass
class _Running:
    """A command this agent runs, from submission (or resume) until its final state is stored."""

    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    state_writes: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Orders a cancel's Canceling against the command's own writes, so it never lands after the end."""
    ended: bool = False
    """Set, under ``state_writes``, once the final state is stored: a cancel then changes nothing."""


@dataclass(frozen=True)
class Submission:
    command: Command | None
    """None for a simulation: nothing was stored and nothing will run."""
    changeset: Changeset


class CommandRunner:
    def __init__(
        self,
        store: Datastore,
        registry: PluginRegistry,
        limiter: RateLimiter,
        policy: RetryPolicy | None = None,
        in_flight: InFlightLimits | None = None,
        plugins: PluginOverview | None = None,
    ) -> None:
        self._store = store
        self._registry = registry
        self._plugins = plugins or PluginOverview(registry)
        """Says, at submission, which namespaces have no healthy plugin and why."""
        self._limiter = limiter
        self._policy = policy or RetryPolicy()
        self._in_flight = in_flight or InFlightLimits()
        """Shared by every command, so two applies together still keep 256 calls per namespace waiting."""
        self._queue: asyncio.Queue[_Plan] = asyncio.Queue()
        self._running: dict[str, _Running] = {}
        """Entries live from submission or resume until the command's task ends, never longer."""

    # ------------------------------------------------------------ submission

    async def submit_apply(
        self,
        forma_json: Any,
        mode: CommandMode,
        *,
        simulate: bool = False,
        force: bool = False,
        source: str = "forma",
    ) -> Submission:
        forma = _parse(forma_json, source)
        await self._check_namespaces(forma)
        current = await self._managed()
        if mode is CommandMode.RECONCILE and not force and not simulate:
            drift = await out_of_band_changes(self._store, [s.label for s in forma.stacks])
            if drift:
                raise Rejected([*drift, "formae apply --force overwrites them with the forma"], conflict=True)
        try:
            changeset = plan(
                forma,
                current,
                self._schemas(forma),
                Mode(mode.value),
                targets=await self._targets(),
                unmanaged=await self._unmanaged(),
            )
        except PlanError as error:
            raise Rejected(error.problems) from None
        return await self._submit(CommandKind.APPLY, mode, forma, forma_json, changeset, simulate, force)

    async def submit_destroy(
        self, forma_json: Any | None, query: str | None, *, simulate: bool = False, source: str = "forma"
    ) -> Submission:
        current = await self._managed()
        targets = await self._targets()
        if forma_json is not None:
            forma = _parse(forma_json, source)
            changeset = plan_destroy(forma, current, targets=targets)
        else:
            try:
                selected = Query.parse(query or "")
            except ValueError as error:
                raise Rejected([str(error)]) from None
            if not selected.terms:  # an unset shell variable must not mean "everything"
                everything = "an empty query would destroy every managed resource; say --query 'stack:*'"
                raise Rejected([f"{everything} to mean that"])
            forma = Forma()
            keys = [key for key, managed in current.items() if selected.matches(key, managed.target)]
            changeset = plan_destroy(keys, current, targets=targets)
        await self._check_namespace_names({u.key.type.split("::", 1)[0] for u in changeset.updates})
        return await self._submit(
            CommandKind.DESTROY,
            CommandMode.PATCH,
            forma,
            forma_json or {"query": query},
            changeset,
            simulate,
            False,
        )

    async def _submit(
        self,
        kind: CommandKind,
        mode: CommandMode,
        forma: Forma,
        forma_json: Any,
        changeset: Changeset,
        simulate: bool,
        force: bool,
    ) -> Submission:
        try:
            dag = Dag(changeset)
        except DagError as error:
            raise Rejected([str(error)]) from None
        if simulate:
            return Submission(None, changeset)
        command = Command.new(kind, mode, _as_object(forma_json), simulate=False, force=force)
        for stack in forma.stacks:
            await self._store.upsert_stack(StackRecord.from_model(stack))
        for target in forma.targets:
            await self._store.upsert_target(TargetRecord.from_model(target))
        records = {u.id: _record(command.id, u) for u in changeset.updates}
        await self._store.create_command(command, list(records.values()))
        log.info("command %s accepted: %s %s %s", command.id, kind, mode, changeset.summary())
        self._running[command.id] = _Running()
        self._queue.put_nowait(_Plan(command, dag, records))
        return Submission(command, changeset)

    async def _check_namespaces(self, forma: Forma) -> None:
        await self._check_namespace_names(
            {r.namespace for r in forma.resources} | {t.namespace for t in forma.targets}
        )

    async def _check_namespace_names(self, namespaces: Iterable[str]) -> None:
        """Refuse, at once and saying why, a command needing a namespace with no healthy plugin."""
        unavailable = await self._plugins.unavailable(namespaces)
        if unavailable.missing:
            raise Rejected(unavailable.missing + unavailable.down)
        if unavailable.down:
            raise Rejected(unavailable.down, unavailable=True)

    def _schemas(self, forma: Forma) -> dict[str, TypeSchema]:
        schemas = {}
        for resource_type in {r.type for r in forma.resources}:
            schema = self._registry.schema(resource_type)
            if schema is not None:
                schemas[resource_type] = TypeSchema(
                    schema.type, schema.identifier, frozenset(schema.create_only), frozenset(schema.read_only)
                )
        return schemas

    async def _managed(self) -> dict[ResourceKey, ManagedResource]:
        """What commands plan from: discovery's unmanaged resources are never planned over."""
        return {r.key: _managed(r) for r in await self._store.current_resources() if r.managed}

    async def _unmanaged(self) -> list[ManagedResource]:
        """What discovery found: a forma that lists one of them adopts it instead of creating it."""
        return [_managed(r) for r in await self._store.current_resources() if not r.managed]

    async def _targets(self) -> dict[str, Target]:
        return {
            t.label: Target(label=t.label, namespace=t.namespace, config=t.config)
            for t in await self._store.list_targets()
        }

    # ------------------------------------------------------------ cancel

    async def cancel(self, command_id: str) -> Command:
        """Ask a command to stop: Canceling is stored unless the command has already ended."""
        running = self._running.get(command_id)
        if running is None:
            command = await self._stored(command_id)
            if command.state.is_final:
                return command
            # Not running here (yet): the resume at start finds it Canceling.
            command = await self._store_canceling(command_id)
            running = self._running.get(command_id)
            if running is None:
                return command
            # resumed while we wrote, perhaps from a read older than our write: tell it too
        async with running.state_writes:
            if not running.ended:
                running.cancel.set()
                return await self._store_canceling(command_id)
        return await self._stored(command_id)

    async def _stored(self, command_id: str) -> Command:
        command = await self._store.get_command(command_id, with_forma=False)
        if command is None:
            raise KeyError(command_id)
        return command

    async def _store_canceling(self, command_id: str) -> Command:
        return await self._store.set_command_state(command_id, CommandState.CANCELING, "cancel requested")

    # ------------------------------------------------------------ execution

    def busy(self) -> bool:
        """Whether a command is running here: background work (sync) then slows to a trickle."""
        return bool(self._running)

    async def wait_finished(self, command_id: str, timeout: float) -> None:
        """Return once the command ends in this agent, or after ``timeout``: a long poll for clients."""
        running = self._running.get(command_id)
        if running is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(running.finished.wait(), timeout)

    async def run(self) -> None:
        """Resume what a previous agent left unfinished, then run commands as they are submitted."""
        async with asyncio.TaskGroup() as commands:
            for command in await self._store.list_incomplete_commands():
                log.info("resuming command %s (%s)", command.id, command.state)
                self._running.setdefault(command.id, _Running())
                commands.create_task(self._execute(command), name=f"command {command.id}")
            while True:
                plan = await self._queue.get()
                commands.create_task(self._execute(plan.command, plan), name=f"command {plan.command.id}")

    async def _execute(self, command: Command, plan: _Plan | None = None) -> None:
        """Run one command to its end; its failures are recorded on it, never raised to the runner."""
        running = self._running[command.id]
        try:
            await self._execute_unguarded(command, plan or await self._stored_plan(command), running)
        except Exception as error:
            log.exception("command %s failed inside the agent", command.id)
            await self._record_failure(command.id, running, f"agent error: {_reason(error)}")
        finally:
            del self._running[command.id]
            running.finished.set()

    async def _stored_plan(self, command: Command) -> _Plan:
        """A command's plan as persisted: how a resumed command rebuilds what submission had."""
        records = {r.update_id: r for r in await self._store.get_updates(command.id)}
        targets = await self._targets()
        return _Plan(command, Dag(Changeset(tuple(_planned(r, targets) for r in records.values()))), records)

    async def _execute_unguarded(self, command: Command, plan: _Plan, running: _Running) -> None:
        cancel = running.cancel
        async with running.state_writes:
            if command.state is CommandState.CANCELING:
                cancel.set()
            if not cancel.is_set():  # a cancel stored Canceling already: InProgress must not overwrite it
                await self._store.set_command_state(command.id, CommandState.IN_PROGRESS)
        inventory = Inventory({r.key: r.properties for r in await self._store.current_resources()})
        executor = ChangesetExecutor(
            dag=plan.dag,
            records=plan.records,
            store=self._store,
            registry=self._registry,
            limiter=self._limiter,
            policy=self._policy,
            inventory=inventory,
            cancel=cancel,
            in_flight=self._in_flight,
        )
        result = await executor.run()
        state = (
            CommandState.SUCCESS
            if result.ok
            else CommandState.CANCELED
            if cancel.is_set()
            else CommandState.FAILED
        )
        message = f"{result.succeeded} succeeded, {result.failed} failed, {result.canceled} canceled"
        await self._end(command.id, running, state, message)
        log.info("command %s finished %s: %s", command.id, state, message)

    async def _record_failure(self, command_id: str, running: _Running, message: str) -> None:
        """Store that the command failed; if the store itself is failing (a full disk), say so and go on.

        The command then stays unfinished in the store and is resumed at the next start: nothing is
        lost, and the agent keeps serving everything else.
        """
        try:
            await self._end(command_id, running, CommandState.FAILED, message)
        except StoreError as error:
            log.error(
                "cannot record that command %s failed (%s); it will be resumed at the next start",
                command_id,
                error,
            )

    async def _end(self, command_id: str, running: _Running, state: CommandState, message: str) -> None:
        async with running.state_writes:
            await self._store.set_command_state(command_id, state, message)
            running.ended = True


def _reason(error: BaseException) -> str:
    """What went wrong, without the TaskGroups it came through: what the user reads on the command."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return str(error)


def _parse(forma_json: Any, source: str) -> Forma:
    try:
        return forma_from_json(forma_json, source)
    except FormaError as error:
        raise Rejected([str(problem) for problem in error.problems]) from None


def _as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"forma": value}


def _managed(record: ResourceRecord) -> ManagedResource:
    return ManagedResource(
        record.key, record.target, record.native_id or "", record.properties, record.desired_properties
    )


def _record(command_id: str, update: PlannedUpdate) -> ResourceUpdateRecord:
    return ResourceUpdateRecord(
        command_id=command_id,
        update_id=update.id,
        operation=Operation(update.operation.value),
        stack=update.key.stack,
        type=update.key.type,
        label=update.key.label,
        target=update.target.label,
        state=UpdateState.PENDING,
        updated_at=utc_now(),
        native_id=update.native_id,
        desired_properties=update.desired_properties,
        prior_properties=update.prior_properties,
        patch=update.patch,
        depends_on=sorted(update.depends_on),
    )


def _planned(record: ResourceUpdateRecord, targets: dict[str, Target]) -> PlannedUpdate:
    """A stored update as the DAG needs it: how a resumed command rebuilds its plan."""
    return PlannedUpdate(
        id=record.update_id,
        operation=PlanOperation(record.operation.value),
        key=record.key,
        target=targets.get(record.target)
        or Target(label=record.target, namespace=record.type.split("::", 1)[0]),
        desired_properties=record.desired_properties,
        prior_properties=record.prior_properties,
        patch=record.patch,
        native_id=record.native_id,
        depends_on=frozenset(record.depends_on),
    )
