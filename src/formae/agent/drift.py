"""Out-of-band changes: what a reconcile would silently undo.

A reconcile makes a stack exactly the forma. If, since the stack's last reconcile, another command
(a patch apply, a destroy) changed it, the reconcile would revert that work without the user
noticing, so it is refused unless forced. A stack never reconciled has nothing to protect.
"""

from __future__ import annotations

from collections.abc import Iterable

from formae.store import Command, CommandKind, CommandMode, Datastore

HISTORY_LIMIT = 1000


async def out_of_band_changes(store: Datastore, stacks: Iterable[str]) -> list[str]:
    """One line per stack changed out of band, naming the commands that did it."""
    commands = await store.list_commands(limit=HISTORY_LIMIT, with_forma=False)
    reconciled: dict[str, frozenset[str]] = {}
    """The stacks each reconcile named: its stored forma (10,000 resources, perhaps) is read once."""
    problems = []
    for stack in stacks:
        changers = await _changes_since_last_reconcile(store, commands, stack, reconciled)
        if changers:
            ids = ", ".join(f"{c.kind} --mode {c.mode} {c.id}" for c in changers)
            problems.append(f"stack {stack!r} was changed out of band since its last reconcile: {ids}")
    return problems


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
    if command.kind is not CommandKind.APPLY or command.mode is not CommandMode.RECONCILE:
        return frozenset()
    if command.id not in reconciled:
        with_forma = await store.get_command(command.id)
        stacks = (with_forma.forma if with_forma and with_forma.forma else {}).get("stacks") or []
        reconciled[command.id] = frozenset(
            label for s in stacks if isinstance(s, dict) and (label := s.get("label") or s.get("Label"))
        )
    return reconciled[command.id]
