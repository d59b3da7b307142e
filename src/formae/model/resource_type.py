"""Resource type names of the form ``Namespace::Service::Kind`` (or ``Namespace::Kind``).

Cloud types have a service in the middle (``AWS::S3::Bucket``); a plugin for one service names its
kinds directly under its namespace (``PostgreSQL::Role``), as Terraform providers do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TYPE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(::[A-Za-z][A-Za-z0-9]*)+$")


def namespace_of(type_name: str) -> str:
    """The namespace of a type name already accepted (stored, planned): the one place that splits it."""
    return type_name.split("::", 1)[0]


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A parsed resource type; the namespace routes it to a plugin."""

    name: str

    def __post_init__(self) -> None:
        if not _TYPE_PATTERN.match(self.name):
            raise ValueError(
                f"resource type {self.name!r} is not of the form Namespace::Service::Kind or Namespace::Kind"
            )

    @property
    def namespace(self) -> str:
        return namespace_of(self.name)

    def __str__(self) -> str:
        return self.name
