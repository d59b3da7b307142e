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
    problems = []
    for stack in stacks:
        changers = await _changes_since_last_reconcile(store, commands, stack)
        if changers:
            ids = ", ".join(f"{c.kind} --mode {c.mode} {c.id}" for c in changers)
            problems.append(f"stack {stack!r} was changed out of band since its last reconcile: {ids}")
    return problems


async def _changes_since_last_reconcile(
    store: Datastore, newest_first: list[Command], stack: str
) -> list[Command]:
    changers: list[Command] = []
    for command in newest_first:
        if await _is_reconcile_of(store, command, stack):
            return changers
        if await _changed(store, command, stack):
            changers.append(command)
    return []


async def _is_reconcile_of(store: Datastore, command: Command, stack: str) -> bool:
    if command.kind is not CommandKind.APPLY or command.mode is not CommandMode.RECONCILE:
        return False
    with_forma = await store.get_command(command.id)
    stacks = (with_forma.forma if with_forma and with_forma.forma else {}).get("stacks") or []
    return any(isinstance(s, dict) and (s.get("label") or s.get("Label")) == stack for s in stacks)


async def _changed(store: Datastore, command: Command, stack: str) -> bool:
    return await store.changed_stack(command.id, stack)
