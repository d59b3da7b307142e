"""What each page shows, read from the store, the plugins' overview and the runner.

Pages show no resource properties: a property may be a secret, and the console has no need of
them (``formae inventory resources -o json`` has). Error messages pass through the agent's
redactor before they reach a page or an event.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from formae.agent.commands import CommandRunner
from formae.agent.drift import DriftEntry, cloud_drift
from formae.agent.plugin_overview import PluginOverview
from formae.api.paging import in_slices
from formae.api.plugin_routes import plugin_view
from formae.api.schemas import PluginView
from formae.graph import Held, Step, View, command_graph, inventory_graph, view
from formae.model import ResourceKey, find_references
from formae.store import Command, Datastore, ResourceRecord, ResourceUpdateRecord, StackRecord

LIVE_LIMIT = 2000
"""A command's page lists and redraws at most this many updates; beyond, it shows counts."""
ROW_LIMIT = 1000
"""A stack's page lists at most this many resources (its graph, folded, shows them all)."""


@dataclass(frozen=True, slots=True)
class ResourceRow:
    key: ResourceKey
    target: str
    native_id: str | None
    version: int
    drift: str | None
    """changed / deleted, as the last sync saw it"""
    changed_paths: tuple[str, ...]
    command_id: str | None
    managed: bool


@dataclass(frozen=True, slots=True)
class StackPage:
    record: StackRecord | None
    label: str
    resources: list[ResourceRow]
    graph: View | None
    """Drawn for a stack's own page only."""

    @property
    def drifted(self) -> int:
        return sum(1 for r in self.resources if r.drift)


@dataclass(frozen=True, slots=True)
class CommandPage:
    command: Command
    counts: dict[str, int]
    updates: list[ResourceUpdateRecord]
    graph: View
    truncated: bool
    message: str
    errors: dict[str, str] = field(default_factory=dict)
    """update id → its error, redacted"""


@dataclass(frozen=True, slots=True)
class PluginGroup:
    namespace: str
    replicas: list[PluginView]

    @property
    def healthy(self) -> int:
        return sum(1 for p in self.replicas if p.healthy)


async def stack_pages(store: Datastore, only: str | None = None) -> list[StackPage]:
    """Every stack (or ``only`` that one, with its graph), resources read and shaped a slice at a time:
    an inventory of 100,000 must not hold the loop that answers plugins' heartbeats."""
    stacks = {s.label: s for s in await store.list_stacks()}
    drift = {d.key: d for d in await cloud_drift(store)}
    by_stack: dict[str, list[ResourceRecord]] = defaultdict(list)
    current = [r for r in await store.current_resources() if only is None or r.key.stack == only]
    for record in current:
        by_stack[record.key.stack].append(record)
    present = {r.key for r in current}
    for entry in drift.values():  # deleted in the cloud: no current version, still shown
        if entry.key not in present and entry.deleted and only in (None, entry.key.stack):
            by_stack[entry.key.stack].append(_tombstone(entry))
    labels = sorted(set(stacks) | set(by_stack))
    if only is not None:
        labels = [only] if only in labels else []
    return [
        await _stack_page(label, stacks.get(label), by_stack[label], drift, only is not None)
        for label in labels
    ]


async def _stack_page(
    label: str,
    record: StackRecord | None,
    resources: list[ResourceRecord],
    drift: dict[ResourceKey, DriftEntry],
    with_graph: bool,
) -> StackPage:
    ordered = sorted(resources, key=lambda r: r.key)
    rows = await in_slices(ordered, lambda r: _row(r, drift.get(r.key)))
    if not with_graph:
        return StackPage(record, label, rows, None)
    held = await in_slices(
        ordered, lambda r: Held(r.key, r.native_id, _refers_to(r), _drift(drift.get(r.key)))
    )
    return StackPage(record, label, rows, view(inventory_graph(held, f"stack {label}")))


def _drift(entry: DriftEntry | None) -> str | None:
    return None if entry is None else "deleted" if entry.deleted else "changed"


def _row(record: ResourceRecord, drift: DriftEntry | None) -> ResourceRow:
    change = _drift(drift)
    paths = tuple(str(p.get("path", "")) for p in drift.patch) if drift else ()
    return ResourceRow(
        record.key,
        record.target,
        record.native_id,
        record.version,
        change,
        paths,
        record.command_id,
        record.managed,
    )


def _refers_to(record: ResourceRecord) -> tuple[ResourceKey, ...]:
    keys = {ResourceKey(*ref.target_key) for _, ref in find_references(record.desired_properties)}
    return tuple(sorted(keys))


def _tombstone(entry: DriftEntry) -> ResourceRecord:
    return ResourceRecord(
        stack=entry.key.stack,
        type=entry.key.type,
        label=entry.key.label,
        target=entry.target,
        native_id=entry.native_id,
        properties={},
        desired_properties={},
        version=0,
        deleted=True,
        command_id=None,
        created_at=entry.detected_at,
    )


async def command_page(
    store: Datastore, runner: CommandRunner, command_id: str, redact: Callable[[str], str]
) -> CommandPage | None:
    command = await store.get_command(command_id, with_forma=False)
    if command is None:
        return None
    counts = {str(state): n for state, n in (await store.count_updates(command_id)).items()}
    updates = await store.get_updates(command_id, limit=LIVE_LIMIT + 1)
    truncated = len(updates) > LIVE_LIMIT
    updates = updates[:LIVE_LIMIT]
    errors = {u.update_id: redact(u.error) for u in updates if u.error}
    message = runner.waiting_message(command_id) or redact(command.message)
    graph = view(command_graph(steps(updates), f"command {command_id}"))
    return CommandPage(command, counts, updates, graph, truncated, message, errors)


def steps(updates: Iterable[ResourceUpdateRecord]) -> list[Step]:
    return [
        Step(
            id=u.update_id,
            operation=str(u.operation),
            key=ResourceKey(u.stack, u.type, u.label),
            depends_on=frozenset(u.depends_on),
            native_id=u.native_id,
            state=str(u.state),
        )
        for u in updates
    ]


def plugin_groups(overview: PluginOverview) -> list[PluginGroup]:
    grouped: dict[str, list[PluginView]] = defaultdict(list)
    for row in overview.rows():
        shown = plugin_view(row)
        grouped[shown.namespace or shown.name].append(shown)
    return [PluginGroup(ns, sorted(rows, key=lambda p: p.node)) for ns, rows in sorted(grouped.items())]


def duration(command: Command) -> float:
    return max(0.0, (command.updated_at - command.created_at).total_seconds())


def state_counts(commands: Iterable[Command]) -> Counter[str]:
    return Counter(str(c.state) for c in commands)


def age(when: datetime, now: datetime) -> str:
    seconds = int((now - when).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"
