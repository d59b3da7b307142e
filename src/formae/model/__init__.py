"""The user's world, as plain typed values: formas, stacks, targets, resources and references.

This package imports nothing else from formae (import-linter keeps it so): every other layer
may depend on it, and it can be reasoned about without an agent, a store or a plugin in sight.
"""

from typing import TYPE_CHECKING, Any

from formae.model.references import Reference, find_references, is_reference, resolve_references
from formae.model.resource_type import ResourceType
from formae.model.vocabulary import Mode, Operation

if TYPE_CHECKING:
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

_PYDANTIC_MODELS = frozenset(
    {"AutoReconcilePolicy", "Forma", "Policy", "Resource", "ResourceKey", "Stack", "Target", "TTLPolicy"}
)


def __getattr__(name: str) -> Any:
    """The pydantic models of ``formae.model.forma``, imported when first asked for.

    A plugin process needs only the vocabulary (``Operation``); importing pydantic cost it about
    60 ms of its start, a third of the time from spawn to ``Plugin registered``.
    """
    if name in _PYDANTIC_MODELS:
        from formae.model import forma

        return getattr(forma, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
