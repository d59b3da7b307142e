"""CommandRunner: runs stored commands to their end, and resumes them after a crash.

Submission (validation, claims, planning, storing) is ``agent/submission.py``; this module takes a
stored command from there, or from the store, and executes it: under its claim (no other work
changes its stacks meanwhile), under its lease (no other agent executes it) with every write fenced
by the lease's generation, with every state change a move of its ``CommandLifecycle``
(``agent/command_state.py``), and every store access through the ``StoreOutage`` gate, so a failing
datastore pauses the command instead of leaving a zombie. A command's failures are recorded on it,
never raised to the runner.

*Adoption* is one path for two cases: at start, every unfinished command a previous agent of this
home left; while running, every unfinished command whose lease expired (its agent died, or was
cut off from the store) — looked for at each lease renewal. Both rebuild the plan from the store
and resume each update from its stored state, a create sent again with its idempotency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypeVar

from formae.agent.command_state import CommandLifecycle, cancel_stored
from formae.agent.conflicts import Claim, Claimant, Claims, Scope
from formae.agent.executor import ChangesetExecutor, ExecutionResult, Inventory
from formae.agent.leases import CommandLeases
from formae.agent.plugin_overview import PluginOverview
from formae.agent.rate_limiter import InFlightLimits, RateLimiter
from formae.agent.registry import PluginRegistry
from formae.agent.store_outage import StoreOutage
from formae.agent.stored_claims import StoredClaims
from formae.agent.submission import (
    CommandPlan,
    Rejected,
    Submission,
    Submissions,
    planned_update,
    stored_targets,
)
from formae.agent.updater import RetryPolicy
from formae.logs import bound
from formae.model import Mode
from formae.plan import Changeset
from formae.plan.dag import Dag
from formae.race import Interrupted, unless_set
from formae.store import Command, CommandState, Datastore, StoreError
from formae.telemetry.hooks import Telemetry

__all__ = ["CommandRunner", "Rejected", "Submission"]

log = logging.getLogger("formae.agent.commands")

T = TypeVar("T")


@dataclass
class _Running:
    """A command this agent runs, from submission (or adoption) until its task ends."""

    command: Command
    lifecycle: CommandLifecycle
    claim: Claim | None
    """This agent's claim, once the store's claim is granted (None while queued or adopted)."""
    finished: asyncio.Event
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class _Start:
    command: Command
    scope: Scope
    claim: Claim | None
    plan: CommandPlan | None


class CommandRunner:
    def __init__(
        self,
        store: Datastore,
        registry: PluginRegistry,
        limiter: RateLimiter,
        policy: RetryPolicy | None = None,
        in_flight: InFlightLimits | None = None,
        plugins: PluginOverview | None = None,
        *,
        claims: Claims | None = None,
        outage: StoreOutage | None = None,
        leases: CommandLeases | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._telemetry = telemetry or Telemetry.off()
        self._store = store
        self._registry = registry
        self._limiter = limiter
        self.policy = policy or RetryPolicy()
        self._in_flight = in_flight or InFlightLimits()
        """Shared by every command, so two applies together still keep 256 calls per namespace waiting."""
        self.claims = claims or Claims()
        self.stored_claims = StoredClaims(store)
        self.outage = outage or StoreOutage()
        self._leases = leases
        if leases is not None:
            leases.on_lost = self._lost
            leases.on_canceled = self._canceled_elsewhere
            self.outage.on_recovering = leases.renew
        self._queue: asyncio.Queue[_Start] = asyncio.Queue()
        self._running: dict[str, _Running] = {}
        """Entries live from submission or adoption until the command's task ends, never longer."""
        self._resumed = asyncio.Event()
        self.submissions = Submissions(
            store, registry, self.claims, self._start, self._resumed, plugins,
            tracing=self._telemetry.tracing, stored_claims=self.stored_claims, leases=leases,
        )  # fmt: skip

    # ------------------------------------------------------------ submission (agent/submission.py)

    async def submit_apply(
        self,
        forma_json: Any,
        mode: Mode,
        *,
        simulate: bool = False,
        force: bool = False,
        source: str = "forma",
        queue: bool = False,
    ) -> Submission:
        return await self.submissions.apply(
            forma_json, mode, simulate=simulate, force=force, source=source, queue=queue
        )

    async def submit_destroy(
        self,
        forma_json: Any | None,
        query: str | None,
        *,
        simulate: bool = False,
        source: str = "forma",
        queue: bool = False,
    ) -> Submission:
        return await self.submissions.destroy(
            forma_json, query, simulate=simulate, source=source, queue=queue
        )

    def _start(self, command: Command, scope: Scope, claim: Claim | None, plan: CommandPlan | None) -> None:
        self._telemetry.metrics.command_moved(command.kind, command.state)
        self._track(command, claim)
        self._queue.put_nowait(_Start(command, scope, claim, plan))

    def _track(self, command: Command, claim: Claim | None) -> _Running:
        metrics = self._telemetry.metrics
        lifecycle = CommandLifecycle(
            self._store,
            command,
            self.outage.persist,
            lambda state: metrics.command_moved(command.kind, state),
        )
        running = _Running(command, lifecycle, claim, asyncio.Event())
        self._running[command.id] = running
        return running

    def runs(self) -> list[str]:
        """The commands this agent executes now, oldest first."""
        return sorted(self._running)

    # ------------------------------------------------------------ questions and cancel

    def waiting_message(self, command_id: str) -> str | None:
        """Why a command this agent runs is paused (the datastore), for ``status command``."""
        return self.outage.waiting_message if command_id in self._running else None

    def running_command(self, command_id: str) -> Command | None:
        """The command as this agent last stored it, for when the store cannot be read."""
        running = self._running.get(command_id)
        if running is None:
            return None
        return replace(running.command, state=running.lifecycle.state, forma=None)

    async def cancel(self, command_id: str) -> Command:
        """Ask a command to stop; the table decides (a cancel after the end changes nothing)."""
        running = self._running.get(command_id)
        if running is not None:
            await running.lifecycle.cancel()
        elif await cancel_stored(self._store, command_id) is None:
            pass  # unknown, or final already: _stored says which
        return await self._stored(command_id)

    async def _stored(self, command_id: str) -> Command:
        command = await self._store.get_command(command_id, with_forma=False)
        if command is None:
            raise KeyError(command_id)
        return command

    def busy(self) -> bool:
        """Whether a command is running here: background work (sync) then slows to a trickle."""
        return bool(self._running)

    async def wait_finished(self, command_id: str, timeout: float) -> None:
        """Return once the command ends, or after ``timeout``: a long poll for clients.

        A command another agent runs is watched in the store, so any agent answers the long poll.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finished(command_id), timeout)

    async def run_ended(self, command_id: str) -> None:
        """Until this agent's run of the command ends (the store may keep it unfinished, to resume)."""
        running = self._running.get(command_id)
        if running is not None:
            await running.finished.wait()

    async def _finished(self, command_id: str) -> None:
        """Until this agent's run of the command ends, or the store shows it final."""
        while True:
            running = self._running.get(command_id)
            if running is not None:
                await running.finished.wait()
                return  # ended here (or left unfinished, to be resumed): either way, look again
            stored = await self._store.get_command(command_id, with_forma=False)
            if stored is None or stored.state.is_final:
                return
            await asyncio.sleep(STORE_POLL)

    def _lost(self, command_ids: set[str]) -> None:
        """Another agent took these commands' leases: stop executing them here, writing nothing more."""
        for command_id in command_ids:
            running = self._running.get(command_id)
            if running is not None and running.task is not None:
                running.task.cancel()

    def _canceled_elsewhere(self, command_ids: set[str]) -> None:
        """A cancel of a command this agent runs reached another agent's API: it is in the store."""
        for command_id in command_ids:
            running = self._running.get(command_id)
            if running is not None:
                running.lifecycle.canceled_elsewhere()

    # ------------------------------------------------------------ running

    async def run(self) -> None:
        """Resume what a previous agent left unfinished, then run commands as they are submitted.

        With leases, also take over, at each renewal, the commands whose agent's lease expired.
        """
        async with asyncio.TaskGroup() as commands:
            for start in await self._adoptable(at_start=True):
                commands.create_task(self._execute(start), name=f"command {start.command.id}")
            self._resumed.set()
            if self._leases is not None:
                commands.create_task(self._leases.run(), name="command leases")
                commands.create_task(self._adopt_forever(self._leases.renew_every), name="takeover")
            while True:
                start = await self._queue.get()
                commands.create_task(self._execute(start), name=f"command {start.command.id}")

    async def _adopt_forever(self, every: float) -> None:
        """Take over the commands whose lease expired: their agent died or lost the store."""
        while True:
            await asyncio.sleep(every)
            try:
                for start in await self._adoptable(at_start=False):
                    self._queue.put_nowait(start)
            except StoreError as error:
                log.warning("cannot look for commands to take over: %s", error)

    async def _adoptable(self, *, at_start: bool) -> list[_Start]:
        """Every unfinished command this agent may execute now, oldest first (the resume path).

        At start: all unfinished commands (those a live other agent holds are refused by their
        lease). Later: those whose lease expired.
        """
        listed = self._store.list_incomplete_commands if at_start else self._store.adoptable_commands
        # At start the store is waited for; later a failure only skips a round, and a read that
        # succeeds must not tell the outage gate that a store failing on other tables is back.
        gate = self._persist if at_start else _directly
        starts = []
        for command in await gate(listed):
            if command.id in self._running:
                continue
            scope = await gate(partial(self._resume_scope, command))
            if scope is None:
                continue
            if at_start:
                log.info("resuming command %s (%s)", command.id, command.state)
            else:
                log.warning(
                    "taking over command %s (%s) from %s", command.id, command.state, command.lease_owner
                )
            self._track(command, None)
            starts.append(_Start(command, scope, None, None))
        return starts

    async def _resume_scope(self, command: Command) -> Scope | None:
        """What a resumed command claims; None when a live other agent holds its lease, or it ended."""
        if self._leases is not None and await self._leases.acquire(command.id) is None:
            now = await self._store.get_command(command.id, with_forma=False)
            if now is not None and not now.state.is_final:  # else it ended since we listed it
                log.warning(
                    "command %s is executed by another agent (%s); not resuming it", now.id, now.lease_owner
                )
            return None
        scope = await self.submissions.scope_of(command, await self._store.get_updates(command.id))
        await self.stored_claims.ensure(command.id, scope)
        return scope

    async def _persist(self, operation: Callable[[], Awaitable[T]]) -> T:
        return await self.outage.persist(operation)

    async def _execute(self, start: _Start) -> None:
        """Run one command to its end; its failures are recorded on it, never raised to the runner."""
        command = start.command
        running = self._running[command.id]
        running.task = asyncio.current_task()
        tracing = self._telemetry.tracing
        span = tracing.take_over(command.id) or tracing.start(
            f"{command.kind} (resumed)", {"formae.command_id": command.id}
        )
        try:
            with (
                bound(command_id=command.id),
                tracing.inside(span),
            ):  # every line of the command, its updates and calls
                await self._execute_claimed(start, running)
        except Exception as error:
            log.exception("command %s failed inside the agent", command.id)
            await self._record_failure(running, f"agent error: {_reason(error)}")
        finally:
            tracing.end(span)
            if running.claim is not None:
                running.claim.release()
            del self._running[command.id]
            running.finished.set()
            await self._release_lease(command.id)

    async def _execute_claimed(self, start: _Start, running: _Running) -> None:
        lifecycle = running.lifecycle
        if self._leases is not None:
            lifecycle.fence = await self._persist(partial(self._leases.acquire, start.command.id))
            if lifecycle.fence is None:
                log.warning("command %s is executed by another agent; leaving it", start.command.id)
                return
        if not await self._claimed(start, running):
            await lifecycle.move(CommandState.CANCELED, "canceled while queued")
            return
        plan = start.plan or await self._plan(start, running)
        if plan is None:
            return
        if not lifecycle.canceled.is_set():
            await lifecycle.move(CommandState.IN_PROGRESS)
        result = await self._run_plan(plan, lifecycle)
        state = (
            CommandState.SUCCESS
            if result.ok
            else CommandState.CANCELED
            if lifecycle.canceled.is_set()
            else CommandState.FAILED
        )
        message = f"{result.succeeded} succeeded, {result.failed} failed, {result.canceled} canceled"
        if await lifecycle.move(state, message):
            log.info("command %s finished %s: %s", start.command.id, state, message)

    async def _claimed(self, start: _Start, running: _Running) -> bool:
        """Hold the command's claim here; a queued one first waits for the store to grant it.

        False if a queued command is canceled before its turn. A planned command, once granted,
        carries what it had sent to the end even when canceled.
        """
        if running.claim is None:
            if start.command.state is CommandState.QUEUED and not await self.stored_claims.wait_granted(
                start.command.id, start.scope, running.lifecycle.canceled
            ):
                return False
            running.claim = self.claims.enqueue(Claimant.command(start.command.id), start.scope)
        if start.command.state is CommandState.QUEUED:
            return await _granted_unless_canceled(running.claim, running.lifecycle.canceled)
        await running.claim.wait()
        return True

    async def _run_plan(self, plan: CommandPlan, lifecycle: CommandLifecycle) -> ExecutionResult:
        """The command's updates run from the inventory as it is now, every write fenced by the lease."""
        current = await self._persist(self._store.current_resources)
        executor = ChangesetExecutor(
            dag=plan.dag,
            records=plan.records,
            store=self._store,
            registry=self._registry,
            limiter=self._limiter,
            policy=self.policy,
            inventory=Inventory({r.key: r.properties for r in current}),
            cancel=lifecycle.canceled,
            in_flight=self._in_flight,
            persist=self.outage.persist,
            telemetry=self._telemetry,
            fence=lifecycle.fence,
            before_call=partial(self._leases.confirm, plan.command.id) if self._leases is not None else None,
        )
        return await executor.run()

    async def _plan(self, start: _Start, running: _Running) -> CommandPlan | None:
        """A resumed command's plan: made now for a queued one, rebuilt from the store otherwise."""
        command, lifecycle, claim = start.command, running.lifecycle, running.claim
        assert claim is not None  # _claimed holds it by now
        if lifecycle.state is CommandState.QUEUED:
            try:
                plan = await self._persist(lambda: self.submissions.plan_queued(command, claim))
            except Rejected as rejected:
                await lifecycle.move(CommandState.FAILED, "; ".join(rejected.problems))
                return None
            if not await lifecycle.plan(list(plan.records.values())):
                return None  # canceled while queued
            log.info("command %s planned after waiting: %d updates", command.id, len(plan.records))
            return plan
        if lifecycle.state is CommandState.CANCELING and not await self._persist(
            lambda: self._store.get_updates(command.id)
        ):
            await lifecycle.move(CommandState.CANCELED, "canceled before it was planned")
            return None
        return await self._stored_plan(command)

    async def _stored_plan(self, command: Command) -> CommandPlan:
        """A command's plan as persisted: how a resumed command rebuilds what submission had."""
        records = {r.update_id: r for r in await self._persist(lambda: self._store.get_updates(command.id))}
        targets = await self._persist(lambda: stored_targets(self._store))
        dag = Dag(Changeset(tuple(planned_update(r, targets) for r in records.values())))
        return CommandPlan(command, dag, records)

    async def _record_failure(self, running: _Running, message: str) -> None:
        """Store that the command failed (riding out a store outage); a refused write is only logged."""
        try:
            await running.lifecycle.move(CommandState.FAILED, message)
        except StoreError as error:
            log.error(
                "cannot record that command %s failed (%s); it stays resumable", running.command.id, error
            )

    async def _release_lease(self, command_id: str) -> None:
        if self._leases is None:
            return
        try:
            await self._leases.release(command_id)
        except StoreError as error:  # it expires on its own
            log.warning("cannot release the lease of command %s: %s", command_id, error)


async def _directly(operation: Callable[[], Awaitable[T]]) -> T:
    return await operation()


STORE_POLL = 0.25
"""Seconds between looks at the store for a command another agent runs (long polls of clients)."""


async def _granted_unless_canceled(claim: Claim, canceled: asyncio.Event) -> bool:
    """Wait for a queued claim; False (and the claim withdrawn) if the command is canceled first."""
    if claim.granted and not canceled.is_set():
        return True
    try:
        await unless_set(claim.wait(), canceled)
    except Interrupted:
        claim.release()
        return False
    return True


def _reason(error: BaseException) -> str:
    """What went wrong, without the TaskGroups it came through: what the user reads on the command."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return str(error)
