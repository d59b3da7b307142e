"""The words every layer shares: what happens to a resource, and how a forma is applied.

There is one ``Operation`` and one ``Mode`` in formae. The planner, the engine, the store, the API
and the plugin SDK all use these; the edges map them to their own representation: the wire codec
(``formae.wire.codec``) to the protocol's enum numbers, the store to its column text (the enum's
value). Their values are the spelling users see in the API and the CLI.
"""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    """What is done to one resource. A replace is not an operation: it is a DELETE and a CREATE."""

    CREATE = "create"
    READ = "read"
    """A read of the cloud: the synchronizer's, a status poll's, or an adoption that changes nothing."""
    UPDATE = "update"
    DELETE = "delete"
    LIST = "list"
    """A page of the resources of one type (discovery); never a planned update."""


class Mode(StrEnum):
    """RECONCILE makes the forma's stacks exactly the forma; PATCH only adds and changes."""

    RECONCILE = "reconcile"
    PATCH = "patch"
