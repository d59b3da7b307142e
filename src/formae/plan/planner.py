"""Turn a forma and the agent's current state into a changeset.

The planner compares what the user wrote before (``ManagedResource.desired_properties``) with
what they write now, so references and values the cloud adds never look like changes. It then
orders the work through references:

- a create or update runs after the creates/updates of the resources it refers to;
- a delete runs after the deletes of the resources that refer to it (a subnet before its VPC),
  and after updates that stop referring to it;
- a **replace** (a change to a create-only property, or a move to another target) is a DELETE
  of the old resource, then a CREATE of the new one, as formae does: the new resource may need
  the old one's name. Resources that refer to a replaced one are updated after its create, so
  they pick up the new value; if the referring property is itself create-only they are
  replaced too, and then their old selves are deleted before the old resource they referred to.

An **adoption**: a resource the forma lists that no stack manages, but that discovery found
(``unmanaged``), matched by type and either its label (discovery labels by native id, and
``formae extract`` keeps that label) or its identifier property. It is taken over, never
created: an UPDATE where the forma differs from the cloud, else a READ that confirms it exists.
A reference in the forma counts as equal when the resource it names already holds the cloud's
value. A create-only property that differs cannot be adopted and is refused.

Before any of that, the forma's properties are checked against the JSON Schemas the plugins
announced (``validation.py``), and every problem — schema, reference, missing resource — is
raised at once in one :class:`PlanError`. Types without a schema are taken to have no
create-only properties and no constraint: checking that every type has a plugin is the agent's
job, before it plans (``validation.type_problems``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jsonpatch

from formae.model import Forma, Mode, Operation, ResourceKey, Target, find_references, is_reference
from formae.plan.changeset import (
    Changeset,
    ManagedResource,
    PlannedUpdate,
    TypeSchema,
    update_id,
)
from formae.plan.validation import property_problems


class PlanError(Exception):
    """The forma cannot be applied to the current state, e.g. it refers to a resource that will not exist."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class _Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    ADOPT = "adopt"


@dataclass(frozen=True, slots=True)
class _Wanted:
    """A resource as it should be after the command: from the forma, or kept as stored."""

    key: ResourceKey
    target: str
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Ref:
    """``owner``'s top-level property ``field`` refers to the resource ``to``."""

    owner: ResourceKey
    field: str
    to: ResourceKey


@dataclass(frozen=True, slots=True)
class _Adoption:
    found: ManagedResource
    """The unmanaged resource, as discovery stored it."""
    patch: list[dict[str, Any]]
    """From the cloud's properties to the forma's; empty when they already agree (a READ)."""

    @property
    def operation(self) -> Operation:
        return Operation.UPDATE if self.patch else Operation.READ


@dataclass(slots=True)
class _Decisions:
    actions: dict[ResourceKey, _Action] = field(default_factory=dict)
    refresh: dict[ResourceKey, set[str]] = field(default_factory=lambda: defaultdict(set))
    adoptions: dict[ResourceKey, _Adoption] = field(default_factory=dict)


def plan(
    forma: Forma,
    current: Mapping[ResourceKey, ManagedResource],
    schemas: Mapping[str, TypeSchema],
    mode: Mode,
    *,
    targets: Mapping[str, Target] | None = None,
    unmanaged: Iterable[ManagedResource] = (),
) -> Changeset:
    """The changeset that brings ``current`` to ``forma``.

    ``current`` should hold every managed resource the forma may refer to (not only those of its
    stacks). ``targets`` are the targets the agent knows, needed to delete resources whose target
    is not in the forma; the forma's own targets take precedence. ``unmanaged`` are the resources
    discovery found, which the forma may adopt.
    """
    all_targets = {**(targets or {}), **{target.label: target for target in forma.targets}}
    wanted = {r.key: _Wanted(r.key, r.target, r.properties) for r in forma.resources}
    deleted = _reconciled_away(forma, wanted, current) if mode is Mode.RECONCILE else []
    world = _world(wanted, current, set(deleted))
    new_refs = _references_of(world.values())
    problems = property_problems(forma, schemas, current)
    problems += _reference_problems(new_refs, wanted, world, set(deleted))
    if problems:
        raise PlanError(problems)
    decisions = _decide(world, current, schemas, new_refs)
    decisions.actions.update(dict.fromkeys(deleted, _Action.DELETE))
    _adopt(decisions, wanted, current, list(unmanaged), schemas)
    return _Builder(world, current, all_targets, decisions, new_refs).build()


def plan_destroy(
    keys_or_forma: Forma | Iterable[ResourceKey],
    current: Mapping[ResourceKey, ManagedResource],
    *,
    targets: Mapping[str, Target] | None = None,
) -> Changeset:
    """Delete the given resources (or those the forma describes) that are managed; others are skipped."""
    all_targets = dict(targets or {})
    if isinstance(keys_or_forma, Forma):
        all_targets.update({target.label: target for target in keys_or_forma.targets})
        keys: Iterable[ResourceKey] = (resource.key for resource in keys_or_forma.resources)
    else:
        keys = keys_or_forma
    decisions = _Decisions({key: _Action.DELETE for key in keys if key in current})
    return _Builder({}, current, all_targets, decisions, []).build()


def _reconciled_away(
    forma: Forma, wanted: Mapping[ResourceKey, _Wanted], current: Mapping[ResourceKey, ManagedResource]
) -> list[ResourceKey]:
    """Managed resources of the forma's stacks that the forma no longer lists."""
    stacks = {stack.label for stack in forma.stacks} | {key.stack for key in wanted}
    return [key for key in current if key.stack in stacks and key not in wanted]


def _world(
    wanted: Mapping[ResourceKey, _Wanted],
    current: Mapping[ResourceKey, ManagedResource],
    deleted: set[ResourceKey],
) -> dict[ResourceKey, _Wanted]:
    """Every resource that exists after the command, forma first; others keep their stored desire."""
    world = dict(wanted)
    for key, managed in current.items():
        if key not in world and key not in deleted:
            world[key] = _Wanted(key, managed.target, managed.desired_properties)
    return world


def _references_of(resources: Iterable[_Wanted]) -> list[_Ref]:
    return [ref for resource in resources for ref in _references(resource.key, resource.properties)]


def _references(owner: ResourceKey, properties: Mapping[str, Any]) -> list[_Ref]:
    refs: list[_Ref] = []
    for name, value in properties.items():
        try:
            found = find_references({name: value})
        except ValueError as error:
            raise PlanError([f"resource {owner}: {error}"]) from None
        refs.extend(_Ref(owner, name, ResourceKey(r.stack, r.type, r.label)) for _, r in found)
    return refs


def _reference_problems(
    refs: Iterable[_Ref],
    wanted: Mapping[ResourceKey, _Wanted],
    world: Mapping[ResourceKey, _Wanted],
    deleted: set[ResourceKey],
) -> list[str]:
    """Why the plan's references could not be resolved when it runs."""
    problems = []
    for ref in refs:
        where = f"resource {ref.owner} refers to {ref.to} (in {ref.field})"
        if ref.to in deleted:
            problems.append(f"{where}, which reconcile would delete: add it to the forma or use patch mode")
        elif ref.to not in world and ref.owner in wanted:
            problems.append(f"{where}, which is neither in the forma nor managed")
    return problems


def _decide(
    world: Mapping[ResourceKey, _Wanted],
    current: Mapping[ResourceKey, ManagedResource],
    schemas: Mapping[str, TypeSchema],
    refs: Iterable[_Ref],
) -> _Decisions:
    """What happens to each resource that exists afterwards, replacements cascading through references."""
    decisions = _Decisions()
    for key, resource in world.items():
        action = _action(resource, current.get(key), _create_only(schemas, key))
        if action is not None:
            decisions.actions[key] = action
    _cascade_replacements(decisions, schemas, refs)
    for key in decisions.refresh:
        decisions.actions.setdefault(key, _Action.UPDATE)
    return decisions


def _action(
    resource: _Wanted, managed: ManagedResource | None, create_only: frozenset[str]
) -> _Action | None:
    if managed is None:
        return _Action.CREATE
    changed = _changed_fields(managed.desired_properties, resource.properties)
    if managed.target != resource.target or changed & create_only:
        return _Action.REPLACE
    return _Action.UPDATE if changed else None


def _adopt(
    decisions: _Decisions,
    wanted: Mapping[ResourceKey, _Wanted],
    current: Mapping[ResourceKey, ManagedResource],
    unmanaged: list[ManagedResource],
    schemas: Mapping[str, TypeSchema],
) -> None:
    """Turn the creates of resources discovery already found into adoptions."""
    if not unmanaged:
        return
    found = {(u.key.type, u.key.label): u for u in unmanaged} | {
        (u.key.type, u.native_id): u for u in unmanaged
    }
    matches = {}
    for key, action in decisions.actions.items():
        if action is _Action.CREATE:
            by_id = (key.type, _identifier(wanted[key], schemas) or "")
            match = found.get((key.type, key.label)) or found.get(by_id)
            if match is not None:
                matches[key] = match
    known = {k: m.properties for k, m in current.items()} | {k: m.properties for k, m in matches.items()}
    problems = []
    for key, match in matches.items():
        schema = schemas.get(key.type)
        cloud = {k: v for k, v in match.desired_properties.items() if not schema or k not in schema.read_only}
        differs = _differing(cloud, wanted[key].properties, known)
        blocked = sorted(differs & _create_only(schemas, key))
        if blocked:
            problems.append(
                f"resource {key} would adopt {match.native_id}, but its create-only {', '.join(blocked)}"
                " differ from the cloud's: write the cloud's values (formae extract shows them)"
            )
            continue
        patch = _patch(cloud, wanted[key].properties, set()) if differs else []
        decisions.actions[key] = _Action.ADOPT
        decisions.adoptions[key] = _Adoption(match, [op for op in patch if _field_of(op) in differs])
    if problems:
        raise PlanError(problems)


def _identifier(resource: _Wanted, schemas: Mapping[str, TypeSchema]) -> str | None:
    schema = schemas.get(resource.key.type)
    value = resource.properties.get(schema.identifier) if schema else None
    return value if isinstance(value, str) else None


def _differing(
    cloud: Mapping[str, Any], forma: Mapping[str, Any], known: Mapping[ResourceKey, Mapping[str, Any]]
) -> set[str]:
    """Top-level fields that differ; a reference equals the cloud's value its resource holds."""
    changed = set()
    for name in cloud.keys() | forma.keys():
        value = forma.get(name)
        if isinstance(value, dict) and is_reference(value):
            target = known.get(ResourceKey(value["$stack"], value["$type"], value["$label"]), {})
            value = target.get(value["$property"], value)
        if _canonical(cloud.get(name)) != _canonical(value):
            changed.add(name)
    return changed


def _field_of(operation: Mapping[str, Any]) -> str:
    return str(operation["path"]).split("/")[1].replace("~1", "/").replace("~0", "~")


def _cascade_replacements(
    decisions: _Decisions, schemas: Mapping[str, TypeSchema], refs: Iterable[_Ref]
) -> None:
    """Referrers of a replaced resource get its new values: by update, or by replacement if create-only."""
    referrers: dict[ResourceKey, list[_Ref]] = defaultdict(list)
    for ref in refs:
        referrers[ref.to].append(ref)
    pending = [key for key, action in decisions.actions.items() if action is _Action.REPLACE]
    while pending:
        for ref in referrers[pending.pop()]:
            action = decisions.actions.get(ref.owner)
            if action in (_Action.CREATE, _Action.REPLACE):
                continue
            if ref.field in _create_only(schemas, ref.owner):
                decisions.actions[ref.owner] = _Action.REPLACE
                pending.append(ref.owner)
            else:
                decisions.refresh[ref.owner].add(ref.field)


def _create_only(schemas: Mapping[str, TypeSchema], key: ResourceKey) -> frozenset[str]:
    schema = schemas.get(key.type)
    return schema.create_only if schema else frozenset()


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    return {
        name for name in old.keys() | new.keys() if _canonical(old.get(name)) != _canonical(new.get(name))
    }


def _canonical(value: Any) -> str:
    """JSON text, so that ``1``, ``1.0`` and ``true`` differ as they do for the cloud."""
    return json.dumps(value, sort_keys=True, default=str)


def _patch(old: dict[str, Any], new: dict[str, Any], refresh: set[str]) -> list[dict[str, Any]]:
    """RFC 6902 from old to new desired properties, re-setting fields whose references now resolve anew.

    A reference is one value, not an object to diff into: pointing it elsewhere replaces it whole,
    so that once the executor resolves it the patch says "this property is now that value". So is
    a secret (``$sealed`` or ``$value``): a changed one is replaced whole, and revealed whole.
    """
    tokens: dict[str, Any] = {}
    operations: list[dict[str, Any]] = jsonpatch.make_patch(_opaque(old, tokens), _opaque(new, tokens)).patch
    operations = [_restored(op, tokens) for op in operations]
    for name in sorted(refresh):
        pointer = "/" + name.replace("~", "~0").replace("/", "~1")
        if not any(op["path"] == pointer or op["path"].startswith(pointer + "/") for op in operations):
            operations.append({"op": "replace", "path": pointer, "value": new[name]})
    return operations


def _opaque(value: Any, tokens: dict[str, Any]) -> Any:
    """``value`` with every reference and secret swapped for a string standing for it, for diffing."""
    if is_reference(value) or (isinstance(value, dict) and ("$sealed" in value or "$value" in value)):
        token = "\x00ref:" + json.dumps(value, sort_keys=True)
        tokens[token] = value
        return token
    if isinstance(value, dict):
        return {key: _opaque(item, tokens) for key, item in value.items()}
    if isinstance(value, list):
        return [_opaque(item, tokens) for item in value]
    return value


def _restored(operation: dict[str, Any], tokens: dict[str, Any]) -> dict[str, Any]:
    if "value" not in operation:
        return operation
    return {**operation, "value": _restore(operation["value"], tokens)}


def _restore(value: Any, tokens: dict[str, Any]) -> Any:
    if isinstance(value, str) and value in tokens:
        return tokens[value]
    if isinstance(value, dict):
        return {key: _restore(item, tokens) for key, item in value.items()}
    if isinstance(value, list):
        return [_restore(item, tokens) for item in value]
    return value


class _Builder:
    """Makes the planned updates and wires their dependencies, once every decision is taken."""

    def __init__(
        self,
        world: Mapping[ResourceKey, _Wanted],
        current: Mapping[ResourceKey, ManagedResource],
        targets: Mapping[str, Target],
        decisions: _Decisions,
        new_refs: Iterable[_Ref],
    ) -> None:
        self.world = world
        self.current = current
        self.targets = targets
        self.decisions = decisions
        self.refers_to: dict[ResourceKey, set[ResourceKey]] = defaultdict(set)
        for ref in new_refs:
            self.refers_to[ref.owner].add(ref.to)
        self.referred_by: dict[ResourceKey, set[ResourceKey]] = defaultdict(set)
        for ref in _references_of(_stored(current.values())):
            self.referred_by[ref.to].add(ref.owner)

    def build(self) -> Changeset:
        updates: list[PlannedUpdate] = []
        for key, action in self.decisions.actions.items():
            if action in (_Action.DELETE, _Action.REPLACE):
                updates.append(self._delete(key, replace=action is _Action.REPLACE))
            if action in (_Action.CREATE, _Action.REPLACE):
                updates.append(self._create(key, replace=action is _Action.REPLACE))
            if action is _Action.UPDATE:
                updates.append(self._update(key))
            if action is _Action.ADOPT:
                updates.append(self._adoption(key))
        return Changeset(tuple(updates))

    def _adoption(self, key: ResourceKey) -> PlannedUpdate:
        resource, adoption = self.world[key], self.decisions.adoptions[key]
        return PlannedUpdate(
            id=update_id(adoption.operation, key),
            operation=adoption.operation,
            key=key,
            target=self._target(key, resource.target),
            desired_properties=resource.properties,
            prior_properties=adoption.found.properties,
            patch=adoption.patch or None,
            native_id=adoption.found.native_id,
            depends_on=frozenset(self._apply_dependencies(key)),
            adopt=True,
        )

    def _create(self, key: ResourceKey, *, replace: bool) -> PlannedUpdate:
        resource = self.world[key]
        depends_on = self._apply_dependencies(key)
        if replace:
            depends_on |= {update_id(Operation.DELETE, key)}
        return PlannedUpdate(
            id=update_id(Operation.CREATE, key),
            operation=Operation.CREATE,
            key=key,
            target=self._target(key, resource.target),
            desired_properties=resource.properties,
            prior_properties=None,
            patch=None,
            native_id=None,
            replace=replace,
            depends_on=frozenset(depends_on),
        )

    def _update(self, key: ResourceKey) -> PlannedUpdate:
        resource, managed = self.world[key], self.current[key]
        return PlannedUpdate(
            id=update_id(Operation.UPDATE, key),
            operation=Operation.UPDATE,
            key=key,
            target=self._target(key, resource.target),
            desired_properties=resource.properties,
            prior_properties=managed.properties,
            patch=_patch(
                managed.desired_properties, resource.properties, self.decisions.refresh.get(key, set())
            ),
            native_id=managed.native_id,
            depends_on=frozenset(self._apply_dependencies(key)),
        )

    def _delete(self, key: ResourceKey, *, replace: bool) -> PlannedUpdate:
        managed = self.current[key]
        return PlannedUpdate(
            id=update_id(Operation.DELETE, key),
            operation=Operation.DELETE,
            key=key,
            target=self._target(key, managed.target),
            desired_properties=None,
            prior_properties=managed.properties,
            patch=None,
            native_id=managed.native_id,
            replace=replace,
            depends_on=frozenset(self._delete_dependencies(key)),
        )

    def _apply_dependencies(self, key: ResourceKey) -> set[str]:
        """The creates/updates of what ``key`` refers to; a replaced one is referred to by its create."""
        ids = set()
        for other in self.refers_to[key]:
            action = self.decisions.actions.get(other)
            if action in (_Action.CREATE, _Action.REPLACE):
                ids.add(update_id(Operation.CREATE, other))
            elif action is _Action.UPDATE:
                ids.add(update_id(Operation.UPDATE, other))
            elif action is _Action.ADOPT:
                ids.add(update_id(self.decisions.adoptions[other].operation, other))
        return ids

    def _delete_dependencies(self, key: ResourceKey) -> set[str]:
        """Whatever referred to ``key`` must be gone first, or have been updated to refer elsewhere."""
        ids = set()
        for other in self.referred_by[key]:
            action = self.decisions.actions.get(other)
            if action in (_Action.DELETE, _Action.REPLACE):
                ids.add(update_id(Operation.DELETE, other))
            elif action is _Action.UPDATE and key not in self.refers_to[other]:
                ids.add(update_id(Operation.UPDATE, other))
        return ids

    def _target(self, key: ResourceKey, label: str) -> Target:
        try:
            return self.targets[label]
        except KeyError:
            raise PlanError(
                [f'resource {key} is on target "{label}", which is neither in the forma nor known']
            ) from None


def _stored(current: Iterable[ManagedResource]) -> Iterable[_Wanted]:
    """Managed resources as they were desired, to know who referred to whom before this command."""
    return (_Wanted(managed.key, managed.target, managed.desired_properties) for managed in current)
