"""What a command will do: the resource updates of a changeset, and the inputs to planning them.

A changeset is data, not behaviour: the planner makes one, the executor walks it as a DAG, the
CLI shows it (``--simulate``). Everything is frozen so that a changeset can be shared between
those without copies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from formae.model import Operation, ResourceKey, Target


@dataclass(frozen=True, slots=True)
class ManagedResource:
    """A resource as the agent stored it after its last successful operation.

    ``properties`` are what the plugin reported (references resolved, read-only values added by
    the cloud); ``desired_properties`` are what the user last wrote in a forma (references
    unresolved). Planning compares forma to ``desired_properties``, so neither resolved
    references nor cloud-added values show up as changes.
    """

    key: ResourceKey
    target: str
    native_id: str
    properties: dict[str, Any]
    desired_properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TypeSchema:
    """What the planner needs to know about a resource type, from the plugin that handles it."""

    type: str
    identifier: str
    create_only: frozenset[str] = frozenset()
    read_only: frozenset[str] = frozenset()
    json_schema: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """The JSON Schema of the type's properties, as announced; empty when the plugin gave none."""


@dataclass(frozen=True, slots=True)
class PlannedUpdate:
    """One operation on one resource, and the ids of the updates that must finish before it.

    ``desired_properties`` may still hold references: they are resolved when the update runs,
    once the resources they name exist. ``patch`` is RFC 6902, from the previously desired
    properties to the new ones. ``replace`` marks the two halves of a replacement.
    """

    id: str
    operation: Operation
    key: ResourceKey
    target: Target
    desired_properties: dict[str, Any] | None
    prior_properties: dict[str, Any] | None
    patch: list[dict[str, Any]] | None
    native_id: str | None
    replace: bool = False
    depends_on: frozenset[str] = frozenset()
    adopt: bool = False
    """Takes over a resource discovery found (an UPDATE where the forma differs, else a READ)."""


def update_id(operation: Operation, key: ResourceKey) -> str:
    """Ids are stable and readable: one resource has at most one update per operation."""
    return f"{operation}:{key}"


@dataclass(frozen=True)
class Changeset:
    """The updates of one command, in a stable order (the forma's, then deletes)."""

    updates: tuple[PlannedUpdate, ...] = ()

    @cached_property
    def _index(self) -> dict[str, PlannedUpdate]:
        return {update.id: update for update in self.updates}

    def by_id(self, id: str) -> PlannedUpdate:
        """The update with this id; KeyError if there is none."""
        return self._index[id]

    def is_empty(self) -> bool:
        return not self.updates

    def summary(self) -> dict[str, int]:
        """Counts as a user reads them: a replacement counts once, as "replace", not as delete + create."""
        counts = Counter(
            "replace" if update.replace else "adopt" if update.adopt else str(update.operation)
            for update in self.updates
            if not (update.replace and update.operation is Operation.DELETE)
        )
        summary = {name: counts[name] for name in ("create", "update", "replace", "delete")}
        if counts["adopt"]:
            summary["adopt"] = counts["adopt"]
        return summary
