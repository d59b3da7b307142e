"""Small builders for the JSON Schemas the plugin announces, one per resource type.

The announced schema follows CloudFormation's resource schema shape: JSON Schema (draft 7) for the
properties, plus ``primaryIdentifier``, ``createOnlyProperties``, ``readOnlyProperties`` and
``writeOnlyProperties`` as JSON pointers. A write-only property is also marked ``writeOnly`` and,
when it holds a secret, ``"format": "password"`` (formae's mark for a value given as
``formae.secret(…)``, i.e. ``{"$value": …, "$visibility": "Opaque"}``, which ``plain`` unwraps) and
``x-formae-sensitive``: the plugin never returns it from a read.
"""

from __future__ import annotations

from typing import Any

JsonSchema = dict[str, Any]

DRAFT = "http://json-schema.org/draft-07/schema#"


def _typed(kind: str, description: str, extra: dict[str, Any]) -> JsonSchema:
    schema: JsonSchema = {"type": kind, **extra}
    if description:
        schema["description"] = description
    return schema


def string(description: str = "", **extra: Any) -> JsonSchema:
    return _typed("string", description, extra)


def integer(description: str = "", **extra: Any) -> JsonSchema:
    return _typed("integer", description, extra)


def boolean(description: str = "", **extra: Any) -> JsonSchema:
    return _typed("boolean", description, extra)


def enum(*values: str, description: str = "") -> JsonSchema:
    return _typed("string", description, {"enum": list(values)})


def array(items: JsonSchema, description: str = "", **extra: Any) -> JsonSchema:
    return _typed("array", description, {"items": items, **extra})


def obj(
    properties: dict[str, JsonSchema], *required: str, description: str = "", additional: bool = False
) -> JsonSchema:
    schema = _typed("object", description, {"properties": properties, "additionalProperties": additional})
    if required:
        schema["required"] = list(required)
    return schema


def any_object(description: str = "") -> JsonSchema:
    """A JSON document AWS takes as it is, such as an IAM policy."""
    return _typed("object", description, {})


def string_map(description: str = "") -> JsonSchema:
    return _typed("object", description, {"additionalProperties": {"type": "string"}})


def plain(value: Any) -> Any:
    """The value inside formae's secret value, or ``value`` itself."""
    if isinstance(value, dict) and "$value" in value:
        return value["$value"]
    return value


TAGS = array(
    obj({"Key": string(maxLength=128), "Value": string(maxLength=256)}, "Key", "Value"),
    "Tags as CloudFormation writes them; keys starting with aws: or formae: are reserved",
    uniqueItems=True,
)


def resource_schema(
    type_name: str,
    description: str,
    properties: dict[str, JsonSchema],
    *,
    identifier: str,
    required: tuple[str, ...],
    create_only: tuple[str, ...],
    read_only: tuple[str, ...],
    write_only: tuple[str, ...],
    sensitive: tuple[str, ...],
) -> JsonSchema:
    """The whole announced document for one type."""
    for name in read_only:
        properties[name] = {**properties[name], "readOnly": True}
    for name in write_only:
        properties[name] = {**properties[name], "writeOnly": True}
    for name in sensitive:
        properties[name] = {**properties[name], "x-formae-sensitive": True}
    return {
        "$schema": DRAFT,
        "typeName": type_name,
        "description": description,
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
        "primaryIdentifier": [_pointer(identifier)],
        "createOnlyProperties": [_pointer(name) for name in create_only],
        "readOnlyProperties": [_pointer(name) for name in read_only],
        "writeOnlyProperties": [_pointer(name) for name in write_only],
    }


def _pointer(name: str) -> str:
    return f"/properties/{name}"
