"""Submissions: turn a submitted forma into a planned, stored, claimed command — or refuse it.

This is where bad input is stopped: the forma is validated, every namespace must have a plugin,
every type must be one its plugin serves and the properties must satisfy the plugins' JSON Schemas
(all such problems reported at once, ``plan/validation.py``), the plan must be acyclic and a
reconcile must not overwrite out-of-band changes unless forced.
Before it reads the inventory it plans from, a command *claims* the stacks and resources it will
change (``agent/conflicts.py``): a command overlapping a running one is refused (409) naming it, or,
with ``queue`` (the CLI's ``--wait``), stored as ``Queued`` and planned only when its turn comes —
never planned from an inventory another command is still changing. A command that passes is stored
with all its resource updates before the API answers, so the agent can die at any moment after
answering and still finish the work. Running it is the CommandRunner's job (``agent/commands.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from formae.agent.conflicts import Claim, Claimant, Claims, ConflictError, Scope
from formae.agent.drift import out_of_band_changes
from formae.agent.leases import CommandLeases
from formae.agent.plugin_overview import PluginOverview
from formae.agent.registry import PluginRegistry
from formae.agent.stored_claims import StoredClaims
from formae.forma import FormaError, forma_from_json
from formae.logs import bound
from formae.model import Forma, Mode, ResourceKey, Target, find_references
from formae.model.query import Query
from formae.model.resource_type import namespace_of
from formae.plan import Changeset, ManagedResource, PlannedUpdate, TypeSchema, plan, plan_destroy
from formae.plan.dag import Dag, DagError
from formae.plan.planner import PlanError
from formae.plan.validation import type_problems
from formae.store import (
    Command,
    CommandKind,
    Datastore,
    ResourceRecord,
    ResourceUpdateRecord,
    StackRecord,
    StoreError,
    TargetRecord,
    UpdateState,
    utc_now,
)
from formae.telemetry.tracing import Tracing

log = logging.getLogger("formae.agent.submission")


class Rejected(Exception):
    """The command cannot be accepted as submitted; ``problems`` say why, in the user's terms."""

    def __init__(self, problems: list[str], *, conflict: bool = False, unavailable: bool = False) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.conflict = conflict
        """True when the forma is fine but the current state forbids it (409): --force or --wait."""
        self.unavailable = unavailable
        """True when the command is fine but a namespace it needs has no healthy plugin now."""


@dataclass(frozen=True)
class CommandPlan:
    """What running a command needs: built at submission, or rebuilt from the store on resume."""

    command: Command
    dag: Dag
    records: dict[str, ResourceUpdateRecord]


@dataclass(frozen=True)
class Submission:
    command: Command | None
    """None for a simulation: nothing was stored and nothing will run."""
    changeset: Changeset
    queued_behind: tuple[str, ...] = ()
    """For a queued command: the commands it waits for. Its changeset is made when its turn comes."""


Start = Callable[[Command, Scope, Claim | None, CommandPlan | None], None]
"""Hands a stored command to the runner: planned (its claim and CommandPlan) or queued (None, None)."""
Planner = Callable[[Command, Claim, Forma | None], Awaitable[Changeset]]
"""Plans a command under its claim, from its forma when the caller parsed it already (else the stored one)."""


class Submissions:
    def __init__(
        self,
        store: Datastore,
        registry: PluginRegistry,
        claims: Claims,
        start: Start,
        ready: asyncio.Event,
        plugins: PluginOverview | None = None,
        *,
        tracing: Tracing | None = None,
        stored_claims: StoredClaims | None = None,
        leases: CommandLeases | None = None,
    ) -> None:
        self._tracing = tracing or Tracing.off()
        """Each submission opens its command's trace (planning inside it); the runner ends it."""
        self._store = store
        self._stored_claims = stored_claims or StoredClaims(store)
        """The claim kept with the command: what refuses overlapping commands of every agent."""
        self._leases = leases
        self._registry = registry
        self._plugins = plugins or PluginOverview(registry)
        """Says, at submission, which namespaces have no healthy plugin and why."""
        self._claims = claims
        self._start = start
        self._ready = ready
        """Set once the runner has claimed what it resumes: nothing new is claimed before."""

    # ------------------------------------------------------------ apply and destroy

    async def apply(
        self,
        forma_json: Any,
        mode: Mode,
        *,
        simulate: bool = False,
        force: bool = False,
        source: str = "forma",
        queue: bool = False,
    ) -> Submission:
        attributes = {"formae.mode": str(mode), "formae.simulate": simulate}
        return await self._traced(
            "apply", attributes, self._apply(forma_json, mode, simulate, force, source, queue)
        )

    async def _apply(
        self, forma_json: Any, mode: Mode, simulate: bool, force: bool, source: str, queue: bool
    ) -> Submission:
        forma = await asyncio.to_thread(_parse, forma_json, source)  # seconds for 10,000 resources
        await self._check_namespaces(forma)
        if simulate:
            return Submission(None, _checked(await self._plan_apply(forma, mode, skip_drift=True)))
        command = Command.new(CommandKind.APPLY, mode, _as_object(forma_json), force=force)
        return await self._admit(command, forma_scope(forma), queue, forma)

    async def destroy(
        self,
        forma_json: Any | None,
        query: str | None,
        *,
        simulate: bool = False,
        source: str = "forma",
        queue: bool = False,
    ) -> Submission:
        attributes = {"formae.simulate": simulate}
        return await self._traced(
            "destroy", attributes, self._destroy(forma_json, query, simulate, source, queue)
        )

    async def _destroy(
        self, forma_json: Any | None, query: str | None, simulate: bool, source: str, queue: bool
    ) -> Submission:
        forma = await asyncio.to_thread(_parse, forma_json, source) if forma_json is not None else None
        selected = None if forma is not None else _query(query)
        if simulate:
            return Submission(None, _checked(await self._plan_destroy(forma, selected)))
        command = Command.new(CommandKind.DESTROY, Mode.PATCH, forma_json or {"query": query})
        scope = forma_scope(forma) if forma is not None else await self._query_scope(selected)
        return await self._admit(command, scope, queue, forma)

    async def _traced(
        self, kind: str, attributes: dict[str, Any], submitting: Coroutine[Any, Any, Submission]
    ) -> Submission:
        """The command's trace: opened here, ``plan`` inside it, handed to the runner to finish."""
        span = self._tracing.start(kind, attributes)
        try:
            with self._tracing.inside(span), self._tracing.span("plan"):
                submission = await submitting
        except BaseException as error:
            self._tracing.end(span, error=str(error) or type(error).__name__)
            raise
        if submission.command is None:  # a simulation: the trace is the plan alone
            self._tracing.end(span)
        else:
            if span is not None:
                span.set_attribute("formae.command_id", submission.command.id)
            self._tracing.hand_over(submission.command.id, span)
        return submission

    async def plan_queued(self, command: Command, claim: Claim) -> CommandPlan:
        """The plan of a queued command whose claim was just granted; Rejected if it is now refused."""
        planned = self._plan_of(command, await self._planner(command)(command, claim, None))
        await self._upsert_stacks_and_targets(_stored_forma(command))
        return planned

    async def scope_of(self, command: Command, updates: Iterable[ResourceUpdateRecord]) -> Scope:
        """What a stored command claims when the agent resumes it."""
        stored = Scope.of(stacks={u.stack for u in updates})
        forma = command.forma or {}
        if command.kind is CommandKind.DESTROY and "query" in forma:
            return stored | await self._query_scope(_query(forma.get("query")))
        try:
            return stored | forma_scope(forma_from_json(forma, "stored forma"))
        except FormaError:
            return stored

    # ------------------------------------------------------------ claiming and storing

    async def _admit(self, command: Command, scope: Scope, queue: bool, forma: Forma | None) -> Submission:
        """Store the command with its claim (refused or queued on an overlap), then plan it.

        ``forma`` is its forma, parsed once at submission.
        """
        await self._ready.wait()
        leased = self._leases.lease_new(command) if self._leases is not None else command
        try:
            stored, conflicts = await self._stored_claims.create(leased, scope, queue=queue)
        except BaseException:
            self._forget_lease(command.id)
            raise
        if stored is None:
            self._forget_lease(command.id)
            conflict = ConflictError(Claimant.command(command.id), conflicts)
            raise Rejected([f"{conflict}; wait for it to end, or submit with --wait to queue"], conflict=True)
        if conflicts:
            behind = tuple(holder.id for holder, _ in conflicts)
            log.info("command %s queued behind %s", stored.id, ", ".join(behind))
            self._start(stored, scope, None, None)
            return Submission(stored, Changeset(()), queued_behind=behind)
        try:
            claim = await self._claim(Claimant.command(command.id), scope)
        except BaseException:
            await self._withdraw(stored)
            raise
        return await self._plan_admitted(stored, scope, claim, forma)

    async def _plan_admitted(
        self, stored: Command, scope: Scope, claim: Claim, forma: Forma | None
    ) -> Submission:
        """Plan a command whose claim is granted; a refusal forgets the command, so nothing is kept."""
        try:
            changeset = await self._planner(stored)(stored, claim, forma)
            planned = self._plan_of(stored, changeset)
            pending = await self._store_planned(planned, changeset, forma or Forma())
        except BaseException:
            claim.release()
            await self._withdraw(stored)
            raise
        if pending is None:  # canceled while it was planned: the runner ends it as canceled
            pending = await self._store.get_command(stored.id, with_forma=False) or stored
            self._start(pending, scope, claim, None)
        else:
            self._start(pending, scope, claim, replace(planned, command=pending))
        return Submission(pending, changeset)

    async def _claim(self, claimant: Claimant, scope: Scope) -> Claim:
        """This agent's claim, once the store's is granted: waits only for brief background work."""
        return await self._claims.claim(claimant, scope)

    async def _withdraw(self, command: Command) -> None:
        """Forget a command refused after its claim was stored: its row, claim and lease."""
        self._forget_lease(command.id)
        try:
            await asyncio.shield(self._store.delete_command(command.id))
        except StoreError as error:  # its lease expires and an agent plans it as a queued command
            log.warning("cannot withdraw command %s: %s", command.id, error)

    def _forget_lease(self, command_id: str) -> None:
        if self._leases is not None:
            self._leases.forget(command_id)

    async def _upsert_stacks_and_targets(self, forma: Forma) -> None:
        for stack in forma.stacks:
            await self._store.upsert_stack(StackRecord.from_model(stack))
        for target in forma.targets:
            await self._store.upsert_target(TargetRecord.from_model(target))

    async def _store_planned(
        self, planned: CommandPlan, changeset: Changeset, forma: Forma
    ) -> Command | None:
        """The updates stored and the command Pending, in one transaction; None if canceled meanwhile."""
        await self._upsert_stacks_and_targets(forma)
        command = planned.command
        fence = self._leases.fence(command.id) if self._leases is not None else None
        records = list(planned.records.values())
        pending = await self._store.plan_queued_command(command.id, records, fence=fence)
        with bound(command_id=command.id):
            log.info(
                "command %s accepted: %s %s %s", command.id, command.kind, command.mode, changeset.summary()
            )
        return pending

    def _plan_of(self, command: Command, changeset: Changeset) -> CommandPlan:
        dag = _dag(changeset)
        return CommandPlan(command, dag, {u.id: _record(command.id, u) for u in changeset.updates})

    # ------------------------------------------------------------ planning

    def _planner(self, command: Command) -> Planner:
        return self._planned_apply if command.kind is CommandKind.APPLY else self._planned_destroy

    async def _planned_apply(self, command: Command, claim: Claim, forma: Forma | None) -> Changeset:
        forma = forma if forma is not None else _stored_forma(command)
        return await self._plan_apply(forma, command.mode, skip_drift=command.force, planning=command.id)

    async def _planned_destroy(self, command: Command, claim: Claim, forma: Forma | None) -> Changeset:
        stored = command.forma or {}
        if "query" in stored:
            changeset = await self._plan_destroy(None, _query(stored.get("query")))
            matched = Scope.of(stacks={u.key.stack for u in changeset.updates})
            try:  # matched now, under the claim: a resource another command made meanwhile
                claim.widen(matched)
                await self._stored_claims.widen(command.id, matched)
            except ConflictError as conflict:
                raise Rejected([f"{conflict}; wait for it to end"], conflict=True) from None
            return changeset
        return await self._plan_destroy(forma if forma is not None else _stored_forma(command), None)

    async def _plan_apply(
        self, forma: Forma, mode: Mode, *, skip_drift: bool, planning: str | None = None
    ) -> Changeset:
        """``planning``: the stored command this plan is for, which is no history of its own stacks."""
        records = await self._store.current_resources()  # read once: 100,000 rows take a second
        current = {r.key: _managed(r) for r in records if r.managed}
        unmanaged = [_managed(r) for r in records if not r.managed]  # discovery's; a forma adopts them
        del records
        changeset = await self._changeset(forma, current, unmanaged, mode)
        if mode is Mode.RECONCILE and not skip_drift:
            drift = await out_of_band_changes(self._store, [s.label for s in forma.stacks], planning=planning)
            if drift:
                raise Rejected([*drift, "formae apply --force overwrites them with the forma"], conflict=True)
        return changeset

    async def _changeset(
        self,
        forma: Forma,
        current: dict[ResourceKey, ManagedResource],
        unmanaged: list[ManagedResource],
        mode: Mode,
    ) -> Changeset:
        """The changeset, or every problem at once: unknown types, schemas, references (``validation.py``)."""
        problems = type_problems(forma, self._served())
        schemas, targets = self._schemas(forma, current), await self._targets()
        try:  # pure, and seconds of JSON Schema checks for 10,000 resources: off the loop that heartbeats
            changeset = await asyncio.to_thread(
                plan, forma, current, schemas, mode, targets=targets, unmanaged=unmanaged
            )
        except PlanError as error:
            problems += error.problems
        if problems:
            raise Rejected(problems)
        return changeset

    async def _plan_destroy(self, forma: Forma | None, selected: Query | None) -> Changeset:
        current = await self._managed()
        targets = await self._targets()
        if forma is not None:
            changeset = plan_destroy(forma, current, targets=targets)
        else:
            assert selected is not None
            keys = [key for key, managed in current.items() if selected.matches(key, managed.target)]
            changeset = plan_destroy(keys, current, targets=targets)
        await self._check_namespace_names({namespace_of(u.key.type) for u in changeset.updates})
        return changeset

    async def _query_scope(self, selected: Query | None) -> Scope:
        """The stacks a query names literally and those it matches now; every stack if it names none.

        A running apply may be creating what the query would match once it ends: a query naming no
        stack cannot tell where, so it waits for (or is refused by) everything.
        """
        assert selected is not None
        named = {pattern for field, pattern in selected.terms if field == "stack" and not _is_glob(pattern)}
        if not named:
            return Scope.everything()
        current = await self._managed()
        matched = {k.stack for k, m in current.items() if selected.matches(k, m.target)}
        return Scope.of(stacks=named | matched)

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

    def _served(self) -> dict[str, set[str]]:
        """The types each registered namespace's plugins announced."""
        served: dict[str, set[str]] = {}
        for plugin in self._registry.plugins():
            served.setdefault(plugin.namespace, set()).update(s.type for s in plugin.schemas)
        return served

    def _schemas(self, forma: Forma, current: Mapping[ResourceKey, ManagedResource]) -> dict[str, TypeSchema]:
        """The announced schema of each type the plan may touch: in the forma, referred to, managed."""
        types = {r.type for r in forma.resources} | {key.type for key in current}
        types |= {ref.type for r in forma.resources for _, ref in find_references(r.properties)}
        schemas = {}
        for resource_type in types:
            schema = self._registry.schema(resource_type)
            if schema is not None:
                schemas[resource_type] = TypeSchema(
                    schema.type,
                    schema.identifier,
                    frozenset(schema.create_only),
                    frozenset(schema.read_only),
                    schema.json_schema,
                )
        return schemas

    async def _managed(self) -> dict[ResourceKey, ManagedResource]:
        """What commands plan from: discovery's unmanaged resources are never planned over."""
        return {r.key: _managed(r) for r in await self._store.current_resources() if r.managed}

    async def _targets(self) -> dict[str, Target]:
        return await stored_targets(self._store)


async def stored_targets(store: Datastore) -> dict[str, Target]:
    return {
        t.label: Target(label=t.label, namespace=t.namespace, config=t.config)
        for t in await store.list_targets()
    }


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def forma_scope(forma: Forma) -> Scope:
    """A forma's command may change every stack it names or puts a resource in."""
    return Scope.of(stacks={s.label for s in forma.stacks} | {r.stack for r in forma.resources})


def _checked(changeset: Changeset) -> Changeset:
    _dag(changeset)
    return changeset


def _dag(changeset: Changeset) -> Dag:
    try:
        return Dag(changeset)
    except DagError as error:
        raise Rejected([str(error)]) from None


def _query(query: Any) -> Query:
    try:
        selected = Query.parse(str(query or ""))
    except ValueError as error:
        raise Rejected([str(error)]) from None
    if not selected.terms:  # an unset shell variable must not mean "everything"
        everything = "an empty query would destroy every managed resource; say --query 'stack:*'"
        raise Rejected([f"{everything} to mean that"])
    return selected


def _parse(forma_json: Any, source: str) -> Forma:
    try:
        return forma_from_json(forma_json, source)
    except FormaError as error:
        raise Rejected([str(problem) for problem in error.problems]) from None


def _stored_forma(command: Command) -> Forma:
    """The forma a command was submitted with (empty for a destroy by query)."""
    stored = command.forma or {}
    return Forma() if "query" in stored else _parse(stored, "stored forma")


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
        operation=update.operation,
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


def planned_update(record: ResourceUpdateRecord, targets: dict[str, Target]) -> PlannedUpdate:
    """A stored update as the DAG needs it: how a resumed command rebuilds its plan."""
    return PlannedUpdate(
        id=record.update_id,
        operation=record.operation,
        key=record.key,
        target=targets.get(record.target) or Target(label=record.target, namespace=namespace_of(record.type)),
        desired_properties=record.desired_properties,
        prior_properties=record.prior_properties,
        patch=record.patch,
        native_id=record.native_id,
        depends_on=frozenset(record.depends_on),
    )
