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

Both are pure: schemas and current state in, problems (strings) out. Checking 10,000 resources
in Python took seconds, so each schema is compiled once per agent, and also by jsonschema-rs:
properties holding no marker that it finds valid are valid; everything else, and every message,
comes from python-jsonschema (``_Checker``).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import jsonschema_rs
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
    validators: dict[str, _Checker | str | None] = {}
    wanted = {resource.key: resource for resource in forma.resources}
    problems = []
    for resource in forma.resources:
        problems.extend(_schema_problems(resource, schemas, validators))
        problems.extend(_reference_problems(resource, schemas, wanted, current))
    return problems


@dataclass(frozen=True)
class _Checker:
    """One type's JSON Schema, compiled twice.

    ``fast`` (jsonschema-rs, compiled Rust, ≈ 0.3 µs a resource against ≈ 40 µs) only ever says
    *valid*, and only where it provably agrees with ``full``: whatever it refuses is checked again
    by ``full`` (python-jsonschema), whose messages the user sees and which knows that a marker (a
    reference, a secret) satisfies any keyword. ``fast`` sees properties without markers as they
    are; a marker as a top-level property is replaced by its clear value or by a stand-in that
    satisfies every subschema applying to that property (``_StandIns``), when there is one.
    """

    full: Validator
    fast: Any | None
    """None when jsonschema-rs cannot compile the schema; then every resource goes to ``full``."""
    stand_ins: _StandIns

    def problems(self, properties: Mapping[str, Any]) -> list[ValidationError] | None:
        """The schema's errors, sorted by path; None when it is satisfied."""
        if self.fast is not None:
            candidate = self.stand_ins.without_markers(properties)
            if candidate is not None and _fast_valid(self.fast, candidate):
                return None
        errors = sorted(self.full.iter_errors(properties), key=lambda e: list(map(str, e.path)))
        return errors or None


_UNSAFE_AT_ROOT = frozenset(
    {"not", "oneOf", "anyOf", "allOf", "if", "then", "else", "dependentSchemas", "unevaluatedProperties"}
    | {"$ref", "$dynamicRef", "enum", "const"}
)
"""Root keywords under which a stand-in could change the verdict on the other properties."""
_ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default", "deprecated"})
_TYPED_STAND_INS: dict[str, Any] = {
    "string": "",
    "integer": 0,
    "number": 0,
    "boolean": False,
    "null": None,
    "object": {},
    "array": [],
}
_NO_STAND_IN = object()


class _StandIns:
    """Stand-ins for markers at the top level of a type's properties (``VpcId: {"$res": …}``).

    A marker satisfies every keyword, so the properties are valid exactly when they are with the
    marker replaced by a value satisfying every subschema that applies to its property — found
    only where those subschemas say nothing but ``type`` — and the root holds no keyword that
    relates one property's value to the others' verdict (``not``, ``oneOf``, ``enum`` …).
    """

    def __init__(self, root: Mapping[str, Any]) -> None:
        self._root = root
        self._safe = not (set(root) & _UNSAFE_AT_ROOT)
        self._known: dict[str, Any] = {}

    def without_markers(self, properties: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """``properties`` as ``fast`` may judge them, or None when only ``full`` can."""
        replaced: dict[str, Any] | None = None
        for key, value in properties.items():
            if not _holds_marker(value):
                continue
            stand_in = self._for(key, value) if self._safe and _is_marker(value) else _NO_STAND_IN
            if stand_in is _NO_STAND_IN:
                return None
            replaced = replaced if replaced is not None else dict(properties)
            replaced[key] = stand_in
        return properties if replaced is None else replaced

    def _for(self, key: str, marker: Mapping[str, Any]) -> Any:
        if "$value" in marker:  # a secret in clear is checked as the value it wraps
            value = marker["$value"]
            return _NO_STAND_IN if _holds_marker(value) else value
        if key not in self._known:
            self._known[key] = _typed_stand_in(_applying(self._root, key))
        return self._known[key]


def _applying(root: Mapping[str, Any], key: str) -> list[Any]:
    """The subschemas that apply to property ``key`` of an object validated against ``root``."""
    declared = root.get("properties")
    patterns = root.get("patternProperties")
    found = [declared[key]] if isinstance(declared, Mapping) and key in declared else []
    if isinstance(patterns, Mapping):
        found += [sub for pattern, sub in patterns.items() if re.search(pattern, key)]
    if not found and "additionalProperties" in root:
        found.append(root["additionalProperties"])
    return found


def _typed_stand_in(subschemas: list[Any]) -> Any:
    allowed = set(_TYPED_STAND_INS)
    for sub in subschemas:
        if sub is True:
            continue
        if not isinstance(sub, Mapping) or set(sub) - _ANNOTATIONS - {"type"}:
            return _NO_STAND_IN
        named = sub.get("type", list(_TYPED_STAND_INS))
        allowed &= {named} if isinstance(named, str) else set(named)
    chosen = next((name for name in _TYPED_STAND_INS if name in allowed), None)
    return _NO_STAND_IN if chosen is None else _TYPED_STAND_INS[chosen]


def _fast_valid(fast: Any, properties: Mapping[str, Any]) -> bool:
    try:
        return bool(fast.is_valid(properties))
    except Exception:  # a value Rust cannot take (an integer beyond 64 bits, say): let ``full`` decide
        return False


def _holds_marker(value: Any) -> bool:
    if isinstance(value, Mapping):
        return _is_marker(value) or any(_holds_marker(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_marker(item) for item in value)
    return False


def _schema_problems(
    resource: Resource, schemas: Mapping[str, TypeSchema], validators: dict[str, _Checker | str | None]
) -> list[str]:
    if resource.type not in validators:
        validators[resource.type] = _validator(schemas.get(resource.type))
    validator = validators[resource.type]
    if validator is None:
        return []
    if isinstance(validator, str):  # the plugin's schema itself is broken: say so for each resource
        return [f"resource {resource.key}: {validator}"]
    try:
        errors = validator.problems(resource.properties) or []
    except (Unresolvable, re.error) as error:
        return [f"resource {resource.key}: the plugin's JSON Schema for {resource.type} fails: {error}"]
    return [f"resource {resource.key}: {_path(error)}: {_short(error.message)}" for error in errors]


def _validator(schema: TypeSchema | None) -> _Checker | str | None:
    """A validator for the type's JSON Schema; None without one; a message when the schema is invalid."""
    if schema is None or not schema.json_schema:
        return None
    return _compiled(schema.type, json.dumps(schema.json_schema, sort_keys=True))


@lru_cache(maxsize=256)
def _compiled(resource_type: str, text: str) -> _Checker | str:
    """Compiled once per schema an agent sees, not once per plan: checking a schema costs milliseconds."""
    document = json.loads(text)
    base = validator_for(document, default=Draft202012Validator)
    try:
        base.check_schema(document)
    except SchemaError as error:
        return f"the plugin announced an invalid JSON Schema for {resource_type}: {_short(error.message)}"
    try:
        fast = jsonschema_rs.validator_for(document)
    except Exception:  # a keyword or a regex it does not support: the full validator alone
        fast = None
    return _Checker(_ignoring_references(base)(document), fast, _StandIns(document))


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
