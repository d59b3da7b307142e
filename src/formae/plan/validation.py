"""Check a forma against what the plugins announced, before anything is planned, stored or sent.

A mistake a plugin would only find once the command runs — a type the plugin does not serve, a
property of the wrong type or unknown to the type, a reference to a property the referred type
does not have — otherwise fails the command halfway, after its dependencies were created. So
each is found here, **all at once** (``--simulate`` shows them together), each naming the
resource (``stack/type/label``) and the property path:

- :func:`type_problems`: every resource type must be one its namespace's plugins announced;
- :func:`property_problems`: every resource's properties must satisfy the JSON Schema its plugin
  announced for the type (any draft the schema names; 2020-12 when it names none). A reference
  stands for a value known only at run time, so it satisfies any schema; instead, the property
  it refers to must be one the referred type has (declared in its schema, or set on the referred
  resource). A secret in clear (``{"$value": …, "$visibility": "Opaque"}``) is checked as the
  value it wraps; a sealed one, or a ``{"$secret": …}`` the agent resolves, satisfies any schema.

Both are pure: schemas and current state in, problems (strings) out.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, SchemaError, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import extend, validator_for
from referencing.exceptions import Unresolvable

from formae.model import Forma, Reference, Resource, ResourceKey, find_references
from formae.plan.changeset import ManagedResource, TypeSchema

_MESSAGE_LIMIT = 300
"""A schema error quotes the offending value; a big object is cut, the path says where it is."""

_Check = Callable[[Validator, Any, Any, Mapping[str, Any]], Iterator[ValidationError] | None]


def type_problems(forma: Forma, served: Mapping[str, Collection[str]]) -> list[str]:
    """Resources whose type no plugin of a present namespace announced (absent namespaces are not ours)."""
    problems = []
    for resource in forma.resources:
        types = served.get(resource.namespace)
        if types is not None and resource.type not in types:
            problems.append(_unknown_type(resource, types))
    return problems


def _unknown_type(resource: Resource, types: Collection[str]) -> str:
    close = difflib.get_close_matches(resource.type, list(types), n=1, cutoff=0.85)
    hint = f"; did you mean {close[0]}?" if close else f"; it serves {', '.join(sorted(types)) or 'none'}"
    plugin = f"the {resource.namespace} plugin"
    return f"resource {resource.key}: type {resource.type} is not served by {plugin}{hint}"


def property_problems(
    forma: Forma, schemas: Mapping[str, TypeSchema], current: Mapping[ResourceKey, ManagedResource]
) -> list[str]:
    """Every property that breaks its type's JSON Schema, and every reference to a missing property."""
    validators: dict[str, Validator | str | None] = {}
    wanted = {resource.key: resource for resource in forma.resources}
    problems = []
    for resource in forma.resources:
        problems.extend(_schema_problems(resource, schemas, validators))
        problems.extend(_reference_problems(resource, schemas, wanted, current))
    return problems


def _schema_problems(
    resource: Resource, schemas: Mapping[str, TypeSchema], validators: dict[str, Validator | str | None]
) -> list[str]:
    if resource.type not in validators:
        validators[resource.type] = _validator(schemas.get(resource.type))
    validator = validators[resource.type]
    if validator is None:
        return []
    if isinstance(validator, str):  # the plugin's schema itself is broken: say so for each resource
        return [f"resource {resource.key}: {validator}"]
    try:
        errors = sorted(validator.iter_errors(resource.properties), key=lambda e: list(map(str, e.path)))
    except (Unresolvable, re.error) as error:
        return [f"resource {resource.key}: the plugin's JSON Schema for {resource.type} fails: {error}"]
    return [f"resource {resource.key}: {_path(error)}: {_short(error.message)}" for error in errors]


def _validator(schema: TypeSchema | None) -> Validator | str | None:
    """A validator for the type's JSON Schema; None without one; a message when the schema is invalid."""
    if schema is None or not schema.json_schema:
        return None
    document = dict(schema.json_schema)
    base = validator_for(document, default=Draft202012Validator)
    try:
        base.check_schema(document)
    except SchemaError as error:
        return f"the plugin announced an invalid JSON Schema for {schema.type}: {_short(error.message)}"
    return _ignoring_references(base)(document)


@cache
def _ignoring_references(base: type[Validator]) -> type[Validator]:
    """``base`` where a reference satisfies every keyword: its value is only known when the command runs."""
    checks = {name: _skip_references(check) for name, check in base.VALIDATORS.items()}
    extended: type[Validator] = extend(base, validators=checks)  # type: ignore[no-untyped-call]
    return extended


def _skip_references(check: _Check) -> _Check:
    def checked(validator: Validator, value: Any, instance: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
        if not _is_marker(instance):
            yield from check(validator, value, instance, schema) or ()
        elif "$value" in instance:  # a secret in clear: checked as the value it wraps
            yield from check(validator, value, instance["$value"], schema) or ()
        # a reference, a sealed secret, a {"$secret": {"env": …}}: opaque here, known at run time

    return checked


def _is_marker(instance: Any) -> bool:
    """formae's value markers are objects whose keys all start with ``$`` (references, secrets)."""
    return isinstance(instance, Mapping) and bool(instance) and all(str(k)[:1] == "$" for k in instance)


def _reference_problems(
    resource: Resource,
    schemas: Mapping[str, TypeSchema],
    wanted: Mapping[ResourceKey, Resource],
    current: Mapping[ResourceKey, ManagedResource],
) -> list[str]:
    problems = []
    for path, reference in find_references(resource.properties):
        known = _properties_of(reference, schemas, wanted, current)
        if known is not None and reference.property not in known:
            referred = ResourceKey(*reference.target_key)
            problems.append(
                f"resource {resource.key}: properties.{path}: refers to {referred}'s property "
                f"{reference.property!r}, which type {reference.type} does not have"
                f" (it has {', '.join(sorted(known)) or 'none'})"
            )
    return problems


def _properties_of(
    reference: Reference,
    schemas: Mapping[str, TypeSchema],
    wanted: Mapping[ResourceKey, Resource],
    current: Mapping[ResourceKey, ManagedResource],
) -> set[str] | None:
    """The properties the referred resource will have; None when its type's schema does not say."""
    schema = schemas.get(reference.type)
    declared = schema.json_schema.get("properties") if schema is not None else None
    if schema is None or not isinstance(declared, Mapping):
        return None
    known = {*declared, *schema.read_only, schema.identifier}
    key = ResourceKey(*reference.target_key)
    if key in wanted:
        known.update(wanted[key].properties)
    if key in current:
        known.update(current[key].properties)
        known.update(current[key].desired_properties)
    return known


def _path(error: ValidationError) -> str:
    text = "properties"
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _short(message: str) -> str:
    return message if len(message) <= _MESSAGE_LIMIT else message[: _MESSAGE_LIMIT - 1] + "…"
