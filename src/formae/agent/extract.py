"""Extract: the forma that describes resources as the inventory has them, managed or not.

``formae extract --query Q`` is how a user brings what discovery found under management (apply
the extracted forma: every resource is adopted, none created), and how they keep the cloud's
values after drift (extract the synced stack instead of re-applying the old forma).

- A managed resource is written as last desired — as synced, references kept — so extracting a
  stack and applying it plans nothing.
- An unmanaged resource is written from the cloud's properties, in the stack the caller names,
  keeping its label (its native id), which is what the planner adopts it by. Where one of its
  properties holds another extracted or managed resource's identifier (a subnet's ``VpcId``), the
  value becomes a ``$res`` reference to that resource, so the dependency is kept and ordered.
- Read-only properties (the cloud's to set) are left out of both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from formae.model import ResourceKey
from formae.store import ResourceRecord, StackRecord, TargetRecord
from formae.wire.types import ResourceSchema

SchemaOf = Callable[[str], ResourceSchema | None]


def extract(
    selected: Iterable[ResourceRecord],
    inventory: Iterable[ResourceRecord],
    stacks: Iterable[StackRecord],
    targets: Iterable[TargetRecord],
    schema_of: SchemaOf,
    *,
    stack_for_unmanaged: str,
) -> dict[str, Any]:
    """A forma (formae's JSON shape) of ``selected``; ``inventory`` is what references may name."""
    chosen = list(selected)
    placed = {r.key: _placed(r, stack_for_unmanaged) for r in chosen}
    owners = _identifier_owners(chosen, inventory, placed, schema_of)
    resources = [_resource(r, placed[r.key], owners, schema_of) for r in chosen]
    used_stacks = {resource["stack"] for resource in resources}
    known_stacks = {s.label: s for s in stacks}
    return {
        "stacks": [_stack(label, known_stacks.get(label)) for label in sorted(used_stacks)],
        "targets": [
            {"label": t.label, "namespace": t.namespace, "config": t.config}
            for t in sorted(targets, key=lambda t: t.label)
            if t.label in {r.target for r in chosen}
        ],
        "resources": resources,
    }


def _placed(record: ResourceRecord, stack_for_unmanaged: str) -> ResourceKey:
    """Where the resource goes in the forma: its own stack, or the named one if unmanaged."""
    return record.key if record.managed else ResourceKey(stack_for_unmanaged, record.type, record.label)


def _identifier_owners(
    chosen: list[ResourceRecord],
    inventory: Iterable[ResourceRecord],
    placed: dict[ResourceKey, ResourceKey],
    schema_of: SchemaOf,
) -> dict[str, tuple[ResourceKey, str]]:
    """Native id → (the key a reference names, the identifier property), for unique ids only."""
    owners: dict[str, tuple[ResourceKey, str]] = {}
    ambiguous: set[str] = set()
    candidates = [*chosen, *(r for r in inventory if r.managed and r.key not in placed)]
    for record in candidates:
        schema = schema_of(record.type)
        if schema is None or not record.native_id:
            continue
        if record.native_id in owners:
            ambiguous.add(record.native_id)
        owners[record.native_id] = (placed.get(record.key, record.key), schema.identifier)
    return {native_id: owner for native_id, owner in owners.items() if native_id not in ambiguous}


def _resource(
    record: ResourceRecord,
    key: ResourceKey,
    owners: dict[str, tuple[ResourceKey, str]],
    schema_of: SchemaOf,
) -> dict[str, Any]:
    schema = schema_of(record.type)
    read_only = set(schema.read_only) if schema else set()
    source = record.desired_properties if record.managed else record.properties
    properties = {name: value for name, value in source.items() if name not in read_only}
    if not record.managed:
        properties = {name: _referenced(value, record, owners) for name, value in properties.items()}
    return {
        "label": key.label,
        "type": key.type,
        "stack": key.stack,
        "target": record.target,
        "properties": properties,
    }


def _referenced(value: Any, record: ResourceRecord, owners: dict[str, tuple[ResourceKey, str]]) -> Any:
    """A value naming another resource's identifier, as a reference to that resource."""
    if not isinstance(value, str) or value == record.native_id or value not in owners:
        return value
    key, identifier = owners[value]
    return {
        "$res": True,
        "$label": key.label,
        "$type": key.type,
        "$stack": key.stack,
        "$property": identifier,
    }


def _stack(label: str, record: StackRecord | None) -> dict[str, Any]:
    stack: dict[str, Any] = {"label": label}
    if record is not None and record.description:
        stack["description"] = record.description
    if record is not None and record.policies:
        stack["policies"] = record.policies
    return stack
