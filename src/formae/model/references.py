"""References from one resource's properties to another resource's property.

A reference is formae's JSON shape ``{"$res": true, "$label": ..., "$type": ..., "$stack": ...,
"$property": ...}`` placed anywhere inside a resource's properties. It is what orders the work:
the referring resource is created after the one it names, with the value filled in.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

REFERENCE_MARKER = "$res"


@dataclass(frozen=True, slots=True)
class Reference:
    """A pointer to ``property`` of the resource ``(stack, type, label)``."""

    label: str
    type: str
    stack: str
    property: str

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Reference:
        missing = [k for k in ("$label", "$type", "$stack", "$property") if not value.get(k)]
        if missing:
            raise ValueError(f"reference is missing {', '.join(missing)}")
        return cls(
            label=str(value["$label"]),
            type=str(value["$type"]),
            stack=str(value["$stack"]),
            property=str(value["$property"]),
        )

    @builtins.property
    def target_key(self) -> tuple[str, str, str]:
        """The (stack, type, label) of the resource referred to."""
        return (self.stack, self.type, self.label)


def is_reference(value: object) -> bool:
    return isinstance(value, Mapping) and value.get(REFERENCE_MARKER) is True


def _walk(value: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if is_reference(value):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def find_references(properties: Mapping[str, Any]) -> list[tuple[str, Reference]]:
    """Every reference in ``properties`` with the dotted path where it sits.

    Raises ValueError naming the path of a malformed reference.
    """
    found: list[tuple[str, Reference]] = []
    for path, raw in _walk(properties, ""):
        try:
            found.append((path, Reference.from_json(raw)))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
    return found


def resolve_references(value: Any, lookup: Callable[[Reference], Any]) -> Any:
    """A copy of ``value`` with each reference replaced by ``lookup(reference)``."""
    if is_reference(value):
        return lookup(Reference.from_json(value))
    if isinstance(value, Mapping):
        return {key: resolve_references(item, lookup) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_references(item, lookup) for item in value]
    return value
