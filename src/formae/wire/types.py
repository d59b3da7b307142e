"""The values a plugin author handles: requests in, progress results out.

The status and error enums carry the protocol's wire values; ``Operation`` is the model's (one
vocabulary for planner, store and plugins), mapped to its wire number by the codec. Either way
the conversion to and from protobuf is a lookup and no protobuf type ever reaches a plugin author
or the agent's engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from formae.model import Operation

JsonObject = dict[str, Any]


class OperationStatus(IntEnum):
    SUCCESS = 1
    FAILURE = 2
    IN_PROGRESS = 3


class ErrorCode(IntEnum):
    """Why an operation failed; the agent decides from it whether to retry."""

    NOT_FOUND = 1
    ALREADY_EXISTS = 2
    THROTTLING = 3
    NOT_STABILIZED = 4
    INVALID_REQUEST = 5
    ACCESS_DENIED = 6
    SERVICE_INTERNAL_ERROR = 7
    NETWORK_FAILURE = 8
    SERVICE_LIMIT_EXCEEDED = 9
    RESOURCE_CONFLICT = 10
    INVALID_CREDENTIALS = 11
    GENERAL_SERVICE_EXCEPTION = 12
    UNSUPPORTED_TYPE = 13
    PLUGIN_ERROR = 14

    @property
    def recoverable(self) -> bool:
        """True when trying again later may succeed without the user changing anything."""
        return self in _RECOVERABLE

    @property
    def wire_name(self) -> str:
        """formae's spelling, e.g. ``NotFound``: what users see in status output."""
        return "".join(part.capitalize() for part in self.name.split("_"))


_RECOVERABLE = frozenset(
    {
        ErrorCode.THROTTLING,
        ErrorCode.NOT_STABILIZED,
        ErrorCode.SERVICE_INTERNAL_ERROR,
        ErrorCode.NETWORK_FAILURE,
        ErrorCode.SERVICE_LIMIT_EXCEEDED,
        ErrorCode.RESOURCE_CONFLICT,
        ErrorCode.GENERAL_SERVICE_EXCEPTION,
    }
)


@dataclass(frozen=True, slots=True)
class ResourceSchema:
    """What the agent must know about a type to plan changes to it."""

    type: str
    identifier: str
    create_only: tuple[str, ...] = ()
    read_only: tuple[str, ...] = ()
    json_schema: JsonObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TargetInfo:
    label: str
    namespace: str
    config: JsonObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CreateRequest:
    resource_type: str
    label: str
    properties: JsonObject
    target: TargetInfo
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class ReadRequest:
    resource_type: str
    native_id: str
    target: TargetInfo


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    resource_type: str
    native_id: str
    prior_properties: JsonObject
    desired_properties: JsonObject
    patch: list[JsonObject]
    target: TargetInfo


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    resource_type: str
    native_id: str
    target: TargetInfo


@dataclass(frozen=True, slots=True)
class StatusRequest:
    request_id: str
    resource_type: str
    target: TargetInfo
    operation: Operation | None = None
    """The operation that answered IN_PROGRESS; None from an agent that does not say (before 0.2)."""


@dataclass(frozen=True, slots=True)
class ListRequest:
    resource_type: str
    target: TargetInfo
    page_token: str = ""
    page_size: int = 0


OperationRequest = CreateRequest | ReadRequest | UpdateRequest | DeleteRequest | StatusRequest | ListRequest


def operation_of(request: OperationRequest) -> Operation:
    """The operation a request performs; a status poll reports on the one it names (READ if unnamed)."""
    if isinstance(request, StatusRequest) and request.operation is not None:
        return request.operation
    return _OPERATIONS[type(request)]


_OPERATIONS: dict[type, Operation] = {
    CreateRequest: Operation.CREATE,
    ReadRequest: Operation.READ,
    UpdateRequest: Operation.UPDATE,
    DeleteRequest: Operation.DELETE,
    StatusRequest: Operation.READ,
    ListRequest: Operation.LIST,
}


@dataclass(frozen=True, slots=True)
class ProgressResult:
    """Where one operation stands: done, failed with a code, or still running under a request id."""

    operation: Operation
    status: OperationStatus
    request_id: str = ""
    native_id: str = ""
    resource_type: str = ""
    properties: JsonObject | None = None
    error_code: ErrorCode | None = None
    message: str = ""
    retry_after: float = 0.0

    @classmethod
    def success(
        cls, operation: Operation, native_id: str = "", properties: JsonObject | None = None, **kw: Any
    ) -> ProgressResult:
        return cls(operation, OperationStatus.SUCCESS, native_id=native_id, properties=properties, **kw)

    @classmethod
    def failure(cls, operation: Operation, error_code: ErrorCode, message: str, **kw: Any) -> ProgressResult:
        return cls(operation, OperationStatus.FAILURE, error_code=error_code, message=message, **kw)

    @classmethod
    def in_progress(cls, operation: Operation, request_id: str, **kw: Any) -> ProgressResult:
        return cls(operation, OperationStatus.IN_PROGRESS, request_id=request_id, **kw)


@dataclass(frozen=True, slots=True)
class ListedResource:
    native_id: str
    properties: JsonObject


@dataclass(frozen=True, slots=True)
class ListResult:
    resources: list[ListedResource]
    next_page_token: str = ""


OperationResult = ProgressResult | ListResult
