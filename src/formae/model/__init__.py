"""The user's world, as plain typed values: formas, stacks, targets, resources and references.

This package imports nothing else from formae (import-linter keeps it so): every other layer
may depend on it, and it can be reasoned about without an agent, a store or a plugin in sight.
"""

from formae.model.forma import (
    AutoReconcilePolicy,
    Forma,
    Policy,
    Resource,
    ResourceKey,
    Stack,
    Target,
    TTLPolicy,
)
from formae.model.references import Reference, find_references, is_reference, resolve_references
from formae.model.resource_type import ResourceType
from formae.model.vocabulary import Mode, Operation

__all__ = [
    "AutoReconcilePolicy",
    "Forma",
    "Mode",
    "Operation",
    "Policy",
    "Reference",
    "Resource",
    "ResourceKey",
    "ResourceType",
    "Stack",
    "TTLPolicy",
    "Target",
    "find_references",
    "is_reference",
    "resolve_references",
]
