"""A plugin that gets the rules wrong, so the conformance kit has something to fail.

It creates a second resource when a create is retried with the same idempotency key, and answers a
missing resource with a FAILURE that carries no error code. Run as
``python tests/integration/plugins/sloppy_plugin.py``.
"""

from __future__ import annotations

import itertools

from formae.plugin import (
    CreateRequest,
    DeleteRequest,
    ErrorCode,
    ListedResource,
    ListRequest,
    ListResult,
    Operation,
    OperationStatus,
    ProgressResult,
    ReadRequest,
    ResourcePlugin,
    ResourceSchema,
    UpdateRequest,
    run,
)

TYPE = "Sloppy::Thing::Item"


class SloppyPlugin(ResourcePlugin):
    name, namespace, version = "sloppy", "Sloppy", "0.1.0"

    def __init__(self) -> None:
        self.items: dict[str, dict[str, object]] = {}
        self.ids = itertools.count(1)

    def schemas(self) -> list[ResourceSchema]:
        return [ResourceSchema(TYPE, identifier="Id")]

    async def create(self, request: CreateRequest) -> ProgressResult:
        if request.resource_type != TYPE:
            return ProgressResult.failure(Operation.CREATE, ErrorCode.UNSUPPORTED_TYPE, request.resource_type)
        native_id = f"item-{next(self.ids)}"  # the idempotency key is ignored: a retry makes another
        self.items[native_id] = {**request.properties, "Id": native_id}
        return ProgressResult.success(Operation.CREATE, native_id, self.items[native_id])

    async def read(self, request: ReadRequest) -> ProgressResult:
        if request.native_id not in self.items:  # a FAILURE without a code
            return ProgressResult(Operation.READ, OperationStatus.FAILURE, message="no such item")
        return ProgressResult.success(Operation.READ, request.native_id, self.items[request.native_id])

    async def update(self, request: UpdateRequest) -> ProgressResult:
        self.items[request.native_id] = {**request.desired_properties, "Id": request.native_id}
        return ProgressResult.success(Operation.UPDATE, request.native_id, self.items[request.native_id])

    async def delete(self, request: DeleteRequest) -> ProgressResult:
        self.items.pop(request.native_id, None)
        return ProgressResult.success(Operation.DELETE, request.native_id)

    async def list(self, request: ListRequest) -> ListResult:
        return ListResult([ListedResource(i, p) for i, p in self.items.items()])


if __name__ == "__main__":
    run(SloppyPlugin())
