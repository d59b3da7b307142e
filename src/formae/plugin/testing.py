"""Test a ResourcePlugin without an agent: every request and result crosses the real wire codec.

A plugin whose answers cannot reach the agent (properties that are not JSON, a list answered to a
create) fails here with ``WireError`` instead of passing its tests and failing against a real agent::

    from formae.plugin import OperationStatus
    from formae.plugin.testing import PluginHarness

    async def test_bucket_is_created() -> None:
        async with PluginHarness(MyCloudPlugin()) as cloud:
            started = await cloud.create("MyCloud::S3::Bucket", {"BucketName": "logs"})
            done = await cloud.run_to_completion(started)
            assert done.status is OperationStatus.SUCCESS
            assert (await cloud.read("MyCloud::S3::Bucket", done.native_id)).properties == done.properties

Exceptions raised by the plugin propagate unchanged, with their traceback, rather than becoming
the ``PluginError`` failure the agent would see.
"""

from __future__ import annotations

import itertools
from types import TracebackType
from typing import Any, TypeVar

from formae.plugin.base import ResourcePlugin
from formae.plugin.dispatch import dispatch
from formae.wire.codec import (
    decode_agent_frame,
    decode_plugin_frame,
    encode_agent_frame,
    encode_plugin_frame,
)
from formae.wire.frames import MalformedReply, OperationCall, OperationReply
from formae.wire.types import (
    CreateRequest,
    DeleteRequest,
    JsonObject,
    ListRequest,
    ListResult,
    OperationRequest,
    OperationResult,
    OperationStatus,
    ProgressResult,
    ReadRequest,
    StatusRequest,
    TargetInfo,
    UpdateRequest,
)

__all__ = ["PluginHarness", "WireError"]

R = TypeVar("R", ProgressResult, ListResult)


class WireError(AssertionError):
    """The plugin answered something that could not cross the wire to the agent."""


class PluginHarness:
    """Calls ``plugin`` as the agent would; use as ``async with`` to run its setup and teardown."""

    def __init__(
        self, plugin: ResourcePlugin, target: TargetInfo | None = None, *, max_polls: int = 1000
    ) -> None:
        self.plugin = plugin
        self.target = target or TargetInfo("test", plugin.namespace)
        self.max_polls = max_polls
        self._call_ids = itertools.count(1)

    async def __aenter__(self) -> PluginHarness:
        await self.plugin.setup()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.plugin.teardown()

    async def create(
        self,
        type: str,
        properties: JsonObject,
        *,
        label: str = "",
        target: TargetInfo | None = None,
        idempotency_key: str = "",
    ) -> ProgressResult:
        request = CreateRequest(type, label, properties, target or self.target, idempotency_key)
        return await self._expect(ProgressResult, request)

    async def read(self, type: str, native_id: str, *, target: TargetInfo | None = None) -> ProgressResult:
        return await self._expect(ProgressResult, ReadRequest(type, native_id, target or self.target))

    async def update(
        self,
        type: str,
        native_id: str,
        prior: JsonObject,
        desired: JsonObject,
        *,
        patch: list[JsonObject] | None = None,
        target: TargetInfo | None = None,
    ) -> ProgressResult:
        request = UpdateRequest(type, native_id, prior, desired, patch or [], target or self.target)
        return await self._expect(ProgressResult, request)

    async def delete(self, type: str, native_id: str, *, target: TargetInfo | None = None) -> ProgressResult:
        return await self._expect(ProgressResult, DeleteRequest(type, native_id, target or self.target))

    async def status(
        self, request_id: str, type: str = "", *, target: TargetInfo | None = None
    ) -> ProgressResult:
        return await self._expect(ProgressResult, StatusRequest(request_id, type, target or self.target))

    async def list(
        self, type: str, *, page_token: str = "", page_size: int = 0, target: TargetInfo | None = None
    ) -> ListResult:
        return await self._expect(ListResult, ListRequest(type, target or self.target, page_token, page_size))

    async def run_to_completion(self, result: ProgressResult, type: str = "") -> ProgressResult:
        """Poll ``status`` while ``result`` is IN_PROGRESS, as the agent does but without sleeping."""
        type = type or result.resource_type
        request_id = result.request_id
        for _ in range(self.max_polls):
            if result.status is not OperationStatus.IN_PROGRESS:
                return result
            result = await self.status(request_id, type)
            request_id = result.request_id or request_id
        if result.status is not OperationStatus.IN_PROGRESS:
            return result
        raise AssertionError(f"still in progress after {self.max_polls} polls: {result}")

    async def call(self, request: OperationRequest) -> OperationResult:
        """One request through the codec to the plugin, and its answer back through the codec."""
        call_id = next(self._call_ids)
        delivered = decode_agent_frame(_over_the_wire(encode_agent_frame(OperationCall(call_id, request))))
        assert isinstance(delivered, OperationCall)
        result = await dispatch(self.plugin, delivered.request)
        try:
            reply = decode_plugin_frame(_over_the_wire(encode_plugin_frame(OperationReply(call_id, result))))
        except Exception as error:  # as in the runtime: anything that stops encoding is the answer's fault
            raise WireError(
                f"{type(request).__name__} answered {result!r}, which cannot be sent: {error!r}"
            ) from error
        if isinstance(reply, MalformedReply):
            raise WireError(
                f"{type(request).__name__} was answered with what the agent cannot read: {reply.reason}"
            )
        assert isinstance(reply, OperationReply)
        assert reply.call_id == call_id
        return reply.result

    async def _expect(self, kind: type[R], request: OperationRequest) -> R:
        result = await self.call(request)
        if not isinstance(result, kind):
            raise WireError(
                f"{type(request).__name__} must be answered with a {kind.__name__}, got {result!r}"
            )
        return result


def _over_the_wire(message: Any) -> Any:
    """The message as the peer parses it from bytes."""
    return type(message).FromString(message.SerializeToString())
