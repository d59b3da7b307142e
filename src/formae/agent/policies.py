"""Stack policies, as formae has them: a stack that expires, and a stack that repairs itself.

Declared on the stack in the forma and stored with it by every apply (``StackRecord``)::

    stacks: [{label: preview, policies: [{type: ttl, ttl_seconds: 3600}]}]
    stacks: [{label: net, policies: [{type: auto-reconcile, interval_seconds: 300}]}]

- **TTL**: ``ttl_seconds`` after the apply that declared it, the stack is destroyed (a destroy
  command of ``stack:LABEL``, visible in ``formae status command`` like any other). Once its
  resources are gone, the stack itself leaves ``formae inventory stacks``.
- **Auto-reconcile**: every ``interval_seconds`` (counted from the last apply or auto-reconcile),
  the stack is synced and, if the cloud drifted, reconciled back to the forma of its last
  successful reconcile — with ``--force``, since declaring the policy is the user's consent to
  overwrite what changed in the cloud. A stack with a command running is left for the next check.

``StackPolicies.check`` is one pass over the stacks; the agent runs it on a schedule (every
``policy_interval`` seconds, behind the leadership seam) so that two agents never both act.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from formae.agent.commands import CommandRunner, Rejected
from formae.agent.synchronizer import Synchronizer
from formae.model import Mode
from formae.store import (
    CommandKind,
    CommandState,
    Datastore,
    StackRecord,
    utc_now,
)

log = logging.getLogger("formae.agent.policies")

HISTORY_LIMIT = 1000
TTL = "ttl"
AUTO_RECONCILE = "auto-reconcile"


class StackPolicies:
    def __init__(
        self,
        store: Datastore,
        runner: CommandRunner,
        synchronizer: Synchronizer,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._runner = runner
        self._synchronizer = synchronizer
        self._clock = clock

    async def check(self) -> None:
        """One pass: destroy what expired, forget stacks whose TTL destroy finished, repair drift."""
        stacks = [s for s in await self._store.list_stacks() if s.policies]
        if not stacks:  # the common case costs one small query every few seconds
            return
        busy = {key.stack for key in await self._store.keys_being_changed()}
        expired = [s for s in stacks if _interval(s, TTL) is not None and s.expires_at is None]
        live = {r.stack for r in await self._store.current_resources() if r.managed} if expired else set()
        now = self._clock()
        for stack in stacks:
            if stack.label in busy:
                continue  # a command is on it: the next pass decides
            if stack.expires_at is not None and stack.expires_at <= now:
                await self._expire(stack)
            elif stack in expired and stack.label not in live:
                await self._store.delete_stack(stack.label)
                log.info("stack %s expired and is gone", stack.label)
            elif _due(stack, now):
                await self._reconcile(stack, now)

    async def _expire(self, stack: StackRecord) -> None:
        try:
            submission = await self._runner.submit_destroy(None, f"stack:{stack.label}", source="ttl policy")
        except Rejected as error:
            log.warning("stack %s expired but cannot be destroyed yet: %s", stack.label, error)
            return
        await self._store.stack_expired(stack.label)
        command = submission.command.id if submission.command else "none"
        log.info("stack %s expired (TTL policy): destroy command %s", stack.label, command)

    async def _reconcile(self, stack: StackRecord, now: datetime) -> None:
        await self._synchronizer.sync(f"stack:{stack.label}")
        forma = await self._last_reconciled_forma(stack.label)
        if forma is None:  # never reconciled by the user: nothing to enforce
            await self._store.stack_reconciled(stack.label, now)
            return
        try:
            plan = await self._runner.submit_apply(
                forma, Mode.RECONCILE, simulate=True, force=True, source="auto-reconcile"
            )
            if not plan.changeset.is_empty():
                submitted = await self._runner.submit_apply(
                    forma, Mode.RECONCILE, force=True, source="auto-reconcile"
                )
                command = submitted.command.id if submitted.command else "none"
                log.info("stack %s drifted: auto-reconcile command %s", stack.label, command)
        except Rejected as error:
            log.warning("auto-reconcile of stack %s refused: %s", stack.label, error)
        # the apply stored the stack afresh; keep its TTL as it was, count the interval from now
        await self._store.upsert_stack(replace(stack, reconciled_at=now))

    async def _last_reconciled_forma(self, label: str) -> dict[str, Any] | None:
        """The stack's part of the forma of its last successful reconcile apply."""
        for command in await self._store.list_commands(
            HISTORY_LIMIT, [CommandState.SUCCESS], with_forma=False
        ):
            if command.kind is not CommandKind.APPLY or command.mode is not Mode.RECONCILE:
                continue
            full = await self._store.get_command(command.id)
            forma = full.forma if full is not None else None
            if forma is not None and any(_label(s) == label for s in forma.get("stacks") or []):
                return _only_stack(forma, label)
        return None


def _interval(stack: StackRecord, kind: str) -> float | None:
    for policy in stack.policies:
        if policy.get("type") == kind:
            value = policy.get("interval_seconds" if kind == AUTO_RECONCILE else "ttl_seconds")
            return float(value) if isinstance(value, int | float) else None
    return None


def _due(stack: StackRecord, now: datetime) -> bool:
    interval = _interval(stack, AUTO_RECONCILE)
    if interval is None:
        return False
    return stack.reconciled_at is None or stack.reconciled_at + timedelta(seconds=interval) <= now


def _label(stack: Any) -> Any:
    return stack.get("label") or stack.get("Label") if isinstance(stack, dict) else None


def _only_stack(forma: dict[str, Any], label: str) -> dict[str, Any]:
    def in_stack(resource: Any) -> bool:
        return isinstance(resource, dict) and (resource.get("stack") or resource.get("Stack")) == label

    return {
        "stacks": [s for s in forma.get("stacks") or [] if _label(s) == label],
        "targets": forma.get("targets") or [],
        "resources": [r for r in forma.get("resources") or [] if in_stack(r)],
    }
