"""Resource type names of the form ``Namespace::Service::Kind``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TYPE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(::[A-Za-z][A-Za-z0-9]*){2,}$")


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A parsed resource type; the namespace routes it to a plugin."""

    name: str

    def __post_init__(self) -> None:
        if not _TYPE_PATTERN.match(self.name):
            raise ValueError(f"resource type {self.name!r} is not of the form Namespace::Service::Kind")

    @property
    def namespace(self) -> str:
        return self.name.split("::", 1)[0]

    def __str__(self) -> str:
        return self.name
