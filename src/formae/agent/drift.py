"""Out-of-band changes: what a reconcile would silently undo, and what changed in the cloud.

A reconcile makes a stack exactly the forma. Two kinds of change since the stack's last reconcile
would be reverted without the user noticing, so the reconcile is refused unless forced:

- another command (a patch apply, a destroy) changed it — unless none of the stack's resources is
  left: re-applying a forma after destroying it loses nothing;
- the synchronizer found properties edited in the cloud (``formae status drift``): someone may
  have fixed production by hand. Resources deleted in the cloud are not a reason to refuse:
  creating them again takes nothing away.

A stack never reconciled has nothing to protect. ``cloud_drift`` is the listing behind
``formae status drift``: what the synchronizer saw differ from the last command's version.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonpatch

from formae.model import Mode, ResourceKey
from formae.model.query import Query
from formae.store import Command, CommandKind, Datastore, ResourceRecord

HISTORY_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class DriftEntry:
    """One resource as the cloud has it against what the last command left."""

    key: ResourceKey
    target: str
    native_id: str | None
    deleted: bool
    """Deleted in the cloud; otherwise its properties were changed there."""
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    patch: list[dict[str, Any]]
    """RFC 6902, from ``before`` to ``after``: what changed (empty for a deletion)."""
    detected_at: datetime
    detected_by: str | None


async def cloud_drift(store: Datastore, query: Query | None = None) -> list[DriftEntry]:
    """What changed in the cloud since the last command, as the synchronizer saw it."""
    entries = []
    for drift in await store.drifted():
        current, baseline = drift.current, drift.baseline
        if query is not None and not query.matches(current.key, current.target, current.managed):
            continue
        before = baseline.properties if baseline else None
        after = None if current.deleted else current.properties
        patch = [] if after is None else jsonpatch.make_patch(before or {}, after).patch
        entry = DriftEntry(
            current.key, current.target, current.native_id, current.deleted,
            before, after, patch, current.created_at, current.command_id,
        )  # fmt: skip
        entries.append(entry)
    return entries


async def out_of_band_changes(
    store: Datastore, stacks: Iterable[str], *, planning: str | None = None
) -> list[str]:
    """One line per stack changed out of band, naming what did it and the command to look at it.

    ``planning`` is the command being planned: it is stored before its plan (its claim is written with
    it), and as a reconcile naming the stacks it would otherwise count as their last reconcile.
    """
    stacks = list(stacks)
    live = {r.stack for r in await store.current_resources() if r.stack in stacks}
    listed = await store.list_commands(limit=HISTORY_LIMIT + 1, with_forma=False)
    commands = [c for c in listed if c.id != planning][:HISTORY_LIMIT]
    reconciled: dict[str, frozenset[str]] = {}
    """The stacks each reconcile named: its stored forma (10,000 resources, perhaps) is read once."""
    problems = []
    for stack in stacks:
        if stack not in live:  # every resource destroyed (or never made): nothing to overwrite
            continue
        changers = await _changes_since_last_reconcile(store, commands, stack, reconciled)
        if changers:
            ids = ", ".join(_named(c) for c in changers)
            problems.append(
                f"stack {stack!r} was changed out of band since its last reconcile: {ids} "
                f"(see formae status command ID)"
            )
    problems.extend(await _edited_in_the_cloud(store, stacks))
    return problems


async def _edited_in_the_cloud(store: Datastore, stacks: list[str]) -> list[str]:
    edited: dict[str, list[ResourceRecord]] = {}
    for drift in await store.drifted():
        if drift.current.stack in stacks and not drift.current.deleted:
            edited.setdefault(drift.current.stack, []).append(drift.current)
    return [
        f"stack {stack!r} was changed in the cloud: {', '.join(f'{r.type} {r.label}' for r in records[:5])}"
        f"{' …' if len(records) > 5 else ''} (see formae status drift --query stack:{stack}; "
        f"formae extract --query stack:{stack} writes a forma that keeps the cloud's values)"
        for stack, records in sorted(edited.items())
    ]


def _named(command: Command) -> str:
    """A command as the user would have typed it: ``destroy 01H…``, ``apply --mode patch 01H…``."""
    if command.kind is CommandKind.DESTROY:
        return f"destroy {command.id}"
    return f"{command.kind} --mode {command.mode} {command.id}"


async def _changes_since_last_reconcile(
    store: Datastore, newest_first: list[Command], stack: str, reconciled: dict[str, frozenset[str]]
) -> list[Command]:
    changers: list[Command] = []
    for command in newest_first:
        if stack in await _reconciled_stacks(store, command, reconciled):
            return changers
        if await store.changed_stack(command.id, stack):
            changers.append(command)
    return []


async def _reconciled_stacks(
    store: Datastore, command: Command, reconciled: dict[str, frozenset[str]]
) -> frozenset[str]:
    if command.kind is not CommandKind.APPLY or command.mode is not Mode.RECONCILE:
        return frozenset()
    if command.id not in reconciled:
        with_forma = await store.get_command(command.id)
        stacks = (with_forma.forma if with_forma and with_forma.forma else {}).get("stacks") or []
        reconciled[command.id] = frozenset(
            label for s in stacks if isinstance(s, dict) and (label := s.get("label") or s.get("Label"))
        )
    return reconciled[command.id]
