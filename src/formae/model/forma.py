"""A forma: the stacks, targets and resources a user wants to exist."""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

from formae.model.resource_type import ResourceType


class ResourceKey(NamedTuple):
    """What identifies a resource across formas and commands."""

    stack: str
    type: str
    label: str

    def __str__(self) -> str:
        return f"{self.stack}/{self.type}/{self.label}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Stack(_Frozen):
    label: str = Field(min_length=1)
    description: str = ""


class Target(_Frozen):
    """Where resources live: an account and region, a cluster. ``config`` is passed to the plugin."""

    label: str = Field(min_length=1)
    namespace: str = Field(min_length=1)
    config: dict[str, Any] = Field(default_factory=dict)


class Resource(_Frozen):
    label: str = Field(min_length=1)
    type: str
    stack: str = Field(min_length=1)
    target: str = Field(min_length=1)
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
