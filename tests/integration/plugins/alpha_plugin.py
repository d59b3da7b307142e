"""A plugin of another namespace (Alpha) for tests that need a second, unrelated plugin process.

Run as ``python tests/integration/plugins/alpha_plugin.py``; it serves one type and creates nothing.
"""

from __future__ import annotations

from formae.plugin import (
    CreateRequest,
    DeleteRequest,
    ErrorCode,
    Operation,
    ProgressResult,
    ReadRequest,
    ResourcePlugin,
    ResourceSchema,
    UpdateRequest,
    run,
)


class AlphaPlugin(ResourcePlugin):
    name, namespace, version = "alpha", "Alpha", "0.1.0"

    def schemas(self) -> list[ResourceSchema]:
        return [ResourceSchema("Alpha::Thing::Widget", identifier="Name")]

    async def create(self, request: CreateRequest) -> ProgressResult:
        return ProgressResult.failure(Operation.CREATE, ErrorCode.INVALID_REQUEST, "alpha creates nothing")

    async def read(self, request: ReadRequest) -> ProgressResult:
        return ProgressResult.failure(Operation.READ, ErrorCode.NOT_FOUND, "alpha has nothing")

    async def update(self, request: UpdateRequest) -> ProgressResult:
        return ProgressResult.failure(Operation.UPDATE, ErrorCode.INVALID_REQUEST, "alpha updates nothing")

    async def delete(self, request: DeleteRequest) -> ProgressResult:
        return ProgressResult.failure(Operation.DELETE, ErrorCode.NOT_FOUND, "alpha has nothing")


if __name__ == "__main__":
    run(AlphaPlugin())
