"""Which plugin method answers which request."""

from __future__ import annotations

from formae.plugin.base import ResourcePlugin
from formae.wire.types import (
    CreateRequest,
    DeleteRequest,
    ListRequest,
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
