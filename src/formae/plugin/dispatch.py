"""Which plugin method answers which request."""

from __future__ import annotations

from formae.plugin.base import ResourcePlugin
from formae.wire.types import (
    CreateRequest,
    DeleteRequest,
    ListRequest,
    Operation,
    OperationRequest,
    OperationResult,
    ReadRequest,
    StatusRequest,
    UpdateRequest,
)


async def dispatch(plugin: ResourcePlugin, request: OperationRequest) -> OperationResult:
    match request:
        case CreateRequest():
            return await plugin.create(request)
        case ReadRequest():
            return await plugin.read(request)
        case UpdateRequest():
            return await plugin.update(request)
        case DeleteRequest():
            return await plugin.delete(request)
        case StatusRequest():
            return await plugin.status(request)
        case ListRequest():
            return await plugin.list(request)


def operation_of(request: OperationRequest) -> Operation:
    """The operation a request performs; a status poll reports on an earlier one, reported as READ."""
    return _OPERATIONS[type(request)]


_OPERATIONS: dict[type, Operation] = {
    CreateRequest: Operation.CREATE,
    ReadRequest: Operation.READ,
    UpdateRequest: Operation.UPDATE,
    DeleteRequest: Operation.DELETE,
    StatusRequest: Operation.READ,
    ListRequest: Operation.LIST,
}
