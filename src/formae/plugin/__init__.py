"""The formae plugin SDK: write one ResourcePlugin subclass and call ``run(plugin)``.

Everything a plugin author needs is re-exported here; gRPC and protobuf stay out of sight.
"""

from formae.model import Operation
from formae.plugin.base import ResourcePlugin
from formae.plugin.run import describe, run
from formae.wire.types import (
    CreateRequest,
    DeleteRequest,
    ErrorCode,
    JsonObject,
    ListedResource,
    ListRequest,
    ListResult,
    OperationStatus,
    ProgressResult,
    ReadRequest,
    ResourceSchema,
    StatusRequest,
    TargetInfo,
    UpdateRequest,
)

__all__ = [
    "CreateRequest",
    "DeleteRequest",
    "ErrorCode",
    "JsonObject",
    "ListRequest",
    "ListResult",
    "ListedResource",
    "Operation",
    "OperationStatus",
    "ProgressResult",
    "ReadRequest",
    "ResourcePlugin",
    "ResourceSchema",
    "StatusRequest",
    "TargetInfo",
    "UpdateRequest",
    "describe",
    "run",
]
