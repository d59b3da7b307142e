"""Inventory queries as formae users write them: ``stack:net type:FakeAWS::EC2::* label:vpc``.

Every term is ``field:pattern`` with a shell-style glob; terms are ANDed. A bare word matches
the label, so ``formae inventory resources --query vpc`` does what one expects. ``managed:false``
selects what discovery found and no stack manages (``managed:true`` the others).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from formae.model.forma import ResourceKey
from formae.model.resource_type import namespace_of

FIELDS = ("stack", "type", "label", "target", "namespace", "managed")


class QueryError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Query:
    terms: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Query:
        terms = []
        for word in text.split():
            field, sep, pattern = word.partition(":")
            if not sep:
                field, pattern = "label", word
            if field not in FIELDS:
                raise QueryError(f"unknown query field {field!r} in {word!r}; use one of {', '.join(FIELDS)}")
            if not pattern:
                raise QueryError(f"query term {word!r} has no pattern")
            terms.append((field, pattern))
        return cls(tuple(terms))

    def matches(self, key: ResourceKey, target: str = "", managed: bool = True) -> bool:
        values = {
            "stack": key.stack,
            "type": key.type,
            "label": key.label,
            "target": target,
            "namespace": namespace_of(key.type),
            "managed": "true" if managed else "false",
        }
        return all(fnmatchcase(values[field], pattern) for field, pattern in self.terms)

    def __str__(self) -> str:
        return " ".join(f"{field}:{pattern}" for field, pattern in self.terms)
