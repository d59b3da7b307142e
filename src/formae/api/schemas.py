"""Request and response bodies of the REST API: the contract the CLI and users script against."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from formae.forma import FormaError
from formae.forma.limits import check_shape
from formae.model import Mode, Operation
from formae.model.query import FIELDS
from formae.store import CommandKind, CommandState, UpdateState


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _only_json_numbers(forma: dict[str, Any]) -> dict[str, Any]:
    """Refuse NaN and Infinity, which Python's JSON parser lets in and nothing after it can store or send.

    Walks with a stack, not recursion: the body parser already accepts nesting near the recursion limit.
    The path is spelled only for a forma that has such a number (a second walk).
    """
    pending: list[Any] = [forma]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value} is not a JSON number (at {_path_of_non_finite(forma)})")
    return forma


def _path_of_non_finite(forma: dict[str, Any]) -> str:
    pending: list[tuple[str, Any]] = [("", forma)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return path.lstrip(".")
        if isinstance(value, dict):
            pending.extend((f"{path}.{key}", item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return ""


def _bounded(forma: dict[str, Any]) -> dict[str, Any]:
    """Refuse a forma nested too deep before any route walks it (sealing secrets does, recursively)."""
    try:
        check_shape(forma, "forma")
    except FormaError as error:
        raise ValueError(str(error)) from None
    return forma


Forma = Annotated[dict[str, Any], AfterValidator(_bounded), AfterValidator(_only_json_numbers)]


class ApplyRequest(_Body):
    forma: Forma = Field(description="The forma in formae's JSON shape")
    mode: Mode = Mode.RECONCILE
    simulate: StrictBool = False
    force: StrictBool = False
    source: str = Field(default="forma", description="File name used in error messages")
    queue: StrictBool = Field(
        default=False, description="Queue behind a running command on the same stacks instead of a 409"
    )


_WORD = rf"(?:[^\s:]+|(?:{'|'.join(FIELDS)}):\S+)"
QUERY_TERMS = rf"^\s*(?:{_WORD}(?:\s+{_WORD})*)?\s*$"
"""What Query.parse accepts: words separated by spaces, each a label pattern or a known field:pattern."""
SOME_TERMS = rf"^\s*{_WORD}(?:\s+{_WORD})*\s*$"


class DestroyRequest(_Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["forma"], "properties": {"forma": {"type": "object"}}},
                {"required": ["query"], "properties": {"query": {"type": "string", "pattern": SOME_TERMS}}},
            ]
        },
    )

    forma: Forma | None = None
    query: str | None = Field(default=None, description="e.g. 'stack:net type:FakeAWS::*'")
    simulate: StrictBool = False
    source: str = "forma"
    queue: StrictBool = Field(
        default=False, description="Queue behind a running command on the same stacks instead of a 409"
    )


class ErrorDetail(BaseModel):
    """What an HTTP error other than a rejected command answers (FastAPI's shape)."""

    detail: str


class Problem(BaseModel):
    error: str
    problems: list[str] = []


class PlannedChange(BaseModel):
    id: str
    operation: str
    stack: str
    type: str
    label: str
    replace: bool
    depends_on: list[str]
    patch: list[dict[str, Any]] | None = None
    adopt: bool = False
    """Takes over a resource discovery found: no create."""
    native_id: str | None = None
    """The resource's id in the cloud, when it exists already (updates, deletes, adoptions)."""


class SubmitResponse(BaseModel):
    command_id: str | None
    queued_behind: list[str] = Field(
        default=[], description="Queued: the commands it waits for; it is planned when they end"
    )
    simulate: bool
    summary: dict[str, int]
    changes: list[PlannedChange]


class UpdateView(BaseModel):
    update_id: str
    operation: Operation
    stack: str
    type: str
    label: str
    target: str
    state: UpdateState
    attempts: int
    request_id: str | None
    native_id: str | None
    error_code: str | None
    error: str | None
    depends_on: list[str]
    updated_at: datetime


class CommandView(BaseModel):
    id: str
    kind: CommandKind
    mode: Mode
    state: CommandState
    message: str
    created_at: datetime
    updated_at: datetime
    summary: dict[str, int] = Field(default_factory=dict, description="Updates by state")
    updates: list[UpdateView] | None = Field(
        default=None, description="One page of updates, in update_id order; None when not asked for"
    )
    next_after: str | None = Field(
        default=None, description="Pass as after= for the next page of updates; None on the last page"
    )


class KeyView(BaseModel):
    stack: str
    type: str
    label: str


class ResourceView(BaseModel):
    stack: str
    type: str
    label: str
    target: str
    native_id: str | None
    version: int
    properties: dict[str, Any]
    command_id: str | None
    created_at: datetime
    managed: bool = True
    """False for what discovery found and no stack manages (stack ``$unmanaged``)."""
    drift: str | None = None
    """"changed in the cloud" when the synchronizer's read is the latest version."""
    refers_to: list[KeyView] = []
    """The resources its forma's references name (what ``formae graph`` draws as edges)."""


class StackView(BaseModel):
    label: str
    description: str
    policies: list[dict[str, Any]] = []
    expires_at: datetime | None = None
    reconciled_at: datetime | None = None


class TargetView(BaseModel):
    label: str
    namespace: str
    config: dict[str, Any]


class ProcessView(BaseModel):
    """A local plugin's process, as the agent's process manager sees it."""

    state: str = Field(description="starting, running, backing-off, refused or stopped")
    pid: int | None
    crash_looping: bool = Field(description="Three or more quick exits in a row")
    restarts: int
    last_exit_code: int | None
    last_exit_at: datetime | None
    next_try_at: datetime | None = Field(description="When a backing-off process is started again")
    stderr_tail: list[str] = Field(description="Its last lines on stderr, oldest first")


class PluginView(BaseModel):
    namespace: str = Field(description="Empty for a local plugin that has not announced itself")
    name: str
    version: str
    node: str
    pid: int
    location: str
    healthy: bool
    status: str
    protocol_version: int
    rate_limit: float
    max_concurrency: int
    in_flight: int
    types: list[str]
    registered_at: datetime | None = Field(description="None while it has not announced itself")
    clock_skew_seconds: float | None = Field(
        default=None, description="How far the plugin's clock is ahead of the agent's; None until known"
    )
    process: ProcessView | None = Field(default=None, description="Only for plugins this agent spawns")


class Health(BaseModel):
    status: str = Field(description="ok, or degraded with the reasons")
    version: str
    plugins: int
    healthy_plugins: int
    reasons: list[str] = Field(default_factory=list, description="Why the agent is degraded")


class TokenRequest(_Body):
    namespaces: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]] = Field(
        min_length=1, description="Namespaces the joining plugin may claim"
    )
    ttl_seconds: int = Field(default=3600, ge=1, le=30 * 24 * 3600)
    agent_address: str | None = Field(
        default=None, description="host:port the plugin dials; the agent's own if unset"
    )


class TokenResponse(BaseModel):
    token: str = Field(description="Give to the plugin as FORMAE_JOIN_TOKEN; shown once, never stored")
    id: str
    namespaces: list[str]
    expires_at: datetime
    agent_address: str
