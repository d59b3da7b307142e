"""A forma: the stacks, targets and resources a user wants to exist."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from formae.model.resource_type import ResourceType
from formae.model.text import name_problem, text_problem


def _a_name(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _a_text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Name = Annotated[str, Field(min_length=1), AfterValidator(_a_name)]
"""A label or namespace: printed in plans and tables, so printable (see ``model/text.py``)."""
Text = Annotated[str, AfterValidator(_a_text)]


class ResourceKey(NamedTuple):
    """What identifies a resource across formas and commands."""

    stack: str
    type: str
    label: str

    def __str__(self) -> str:
        return f"{self.stack}/{self.type}/{self.label}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class TTLPolicy(_Frozen):
    """The stack is destroyed ``ttl_seconds`` after the apply that declared it (a preview environment)."""

    type: Literal["ttl"] = "ttl"
    ttl_seconds: float = Field(gt=0)


class AutoReconcilePolicy(_Frozen):
    """Every ``interval_seconds`` the stack is synced and what drifted is put back, with no user command."""

    type: Literal["auto-reconcile"] = "auto-reconcile"
    interval_seconds: float = Field(gt=0)


Policy = Annotated[TTLPolicy | AutoReconcilePolicy, Field(discriminator="type")]


class Stack(_Frozen):
    label: Name
    description: Text = ""
    policies: list[Policy] = Field(default_factory=list)


class Target(_Frozen):
    """Where resources live: an account and region, a cluster. ``config`` is passed to the plugin."""

    label: Name
    namespace: Name
    config: dict[str, Any] = Field(default_factory=dict)


class Resource(_Frozen):
    label: Name
    type: str
    stack: Name
    target: Name
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _valid_type(cls, value: str) -> str:
        ResourceType(value)
        return value

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.stack, self.type, self.label)

    @property
    def namespace(self) -> str:
        return ResourceType(self.type).namespace


class Forma(_Frozen):
    stacks: list[Stack] = Field(default_factory=list)
    targets: list[Target] = Field(default_factory=list)
    resources: list[Resource] = Field(default_factory=list)
