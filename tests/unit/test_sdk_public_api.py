"""The plugin SDK's public surface: pinned names, the minimal plugin, and the testing harness."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest

import formae.plugin
import formae.plugin.testing
from formae.plugin import (
    CreateRequest,
    DeleteRequest,
    ErrorCode,
    ListRequest,
    ListResult,
    Operation,
    OperationStatus,
    ProgressResult,
    ReadRequest,
    ResourcePlugin,
    ResourceSchema,
    StatusRequest,
    TargetInfo,
    UpdateRequest,
    describe,
)
from formae.plugin._runtime import _Session
from formae.plugin.settings import PluginSettings
from formae.plugin.testing import PluginHarness, WireError
from formae.wire.frames import OperationCall, OperationReply
from formae.wire.transport import AgentSideStream
from tests.unit.memory_stream import MemoryStreamPair

pytestmark = pytest.mark.timeout(10)

THING = "Mini::Box::Thing"


def test_public_names_are_pinned() -> None:
    assert formae.plugin.__all__ == [
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
    assert all(hasattr(formae.plugin, name) for name in formae.plugin.__all__)


def test_testing_names_are_pinned() -> None:
    assert formae.plugin.testing.__all__ == ["PluginHarness", "WireError"]


def test_public_types_hide_protobuf() -> None:
    for name in formae.plugin.__all__:
        module = getattr(getattr(formae.plugin, name), "__module__", "")
        assert not module.startswith(("formae._proto", "google.protobuf")), name


class MiniPlugin(ResourcePlugin):
    """Only what a plugin must write: schemas and the four operations."""

    name = "mini"
    namespace = "Mini"
    version = "0.3.0"

    def __init__(self) -> None:
        self.things: dict[str, dict[str, Any]] = {}
        self.events: list[str] = []

    async def setup(self) -> None:
        self.events.append("setup")

    async def teardown(self) -> None:
        self.events.append("teardown")

    def schemas(self) -> list[ResourceSchema]:
        return [ResourceSchema(THING, "Name")]

    async def create(self, request: CreateRequest) -> ProgressResult:
        self.things[request.label] = request.properties
        return ProgressResult.success(Operation.CREATE, request.label, request.properties)

    async def read(self, request: ReadRequest) -> ProgressResult:
        return ProgressResult.success(Operation.READ, request.native_id, self.things[request.native_id])

    async def update(self, request: UpdateRequest) -> ProgressResult:
        self.things[request.native_id] = request.desired_properties
        return ProgressResult.success(Operation.UPDATE, request.native_id, request.desired_properties)

    async def delete(self, request: DeleteRequest) -> ProgressResult:
        self.things.pop(request.native_id)
        return ProgressResult.success(Operation.DELETE, request.native_id)


def test_subclasses_need_only_schemas_and_the_four_operations() -> None:
    assert ResourcePlugin.__abstractmethods__ == frozenset({"schemas", "create", "read", "update", "delete"})
    plugin = MiniPlugin()
    assert (plugin.rate_limit, plugin.max_concurrency) == (0.0, 0)
    described = describe(plugin)
    assert {k: described[k] for k in ("name", "namespace", "version", "types")} == {
        "name": "mini",
        "namespace": "Mini",
        "version": "0.3.0",
        "types": [THING],
    }
    assert described["schemas"] == [
        {"type": THING, "identifier": "Name", "create_only": [], "read_only": [], "json_schema": {}}
    ]


def test_a_missing_operation_is_named() -> None:
    class NoDelete(ResourcePlugin):
        def schemas(self) -> list[ResourceSchema]:
            return []

        async def create(self, request: CreateRequest) -> ProgressResult:
            raise NotImplementedError

        async def read(self, request: ReadRequest) -> ProgressResult:
            raise NotImplementedError

        async def update(self, request: UpdateRequest) -> ProgressResult:
            raise NotImplementedError

    with pytest.raises(TypeError, match="delete"):
        NoDelete()  # type: ignore[abstract]


async def test_default_status_and_list() -> None:
    plugin = MiniPlugin()
    status = await plugin.status(StatusRequest("req-1", THING, TargetInfo("t", "Mini")))
    assert (status.status, status.error_code) == (OperationStatus.FAILURE, ErrorCode.INVALID_REQUEST)
    assert "'req-1'" in status.message
    assert await plugin.list(ListRequest(THING, TargetInfo("t", "Mini"))) == ListResult([])


# ---------------------------------------------------------------- the harness


async def test_harness_runs_setup_and_teardown_and_every_operation() -> None:
    plugin = MiniPlugin()
    async with PluginHarness(plugin) as box:
        assert plugin.events == ["setup"]
        assert box.target == TargetInfo("test", "Mini")
        created = await box.create(THING, {"Size": 3, "Label": "ü"}, label="a")
        assert created == ProgressResult.success(Operation.CREATE, "a", {"Size": 3, "Label": "ü"})
        assert created.properties is not plugin.things["a"]  # it crossed the wire: a copy, not the same dict
        assert (await box.read(THING, "a")).properties == {"Size": 3, "Label": "ü"}
        assert (await box.update(THING, "a", {"Size": 3}, {"Size": 4})).properties == {"Size": 4}
        assert (await box.delete(THING, "a")).status is OperationStatus.SUCCESS
        assert (await box.status("req-1", THING)).error_code is ErrorCode.INVALID_REQUEST
        assert await box.list(THING) == ListResult([])
        assert await box.run_to_completion(created) is created
    assert plugin.events == ["setup", "teardown"]


async def test_harness_sends_the_given_target_and_idempotency_key() -> None:
    seen: list[CreateRequest] = []

    class Spy(MiniPlugin):
        async def create(self, request: CreateRequest) -> ProgressResult:
            seen.append(request)
            return await super().create(request)

    target = TargetInfo("prod", "Mini", {"Region": "x", "Zones": [1, 2]})
    box = PluginHarness(Spy(), target)
    await box.create(THING, {}, label="a", idempotency_key="k-1")
    await box.create(THING, {}, label="b", target=TargetInfo("other", "Mini"))
    assert [(r.label, r.target.label, r.idempotency_key) for r in seen] == [
        ("a", "prod", "k-1"),
        ("b", "other", ""),
    ]
    assert seen[0].target == target


class Unsendable(MiniPlugin):
    async def read(self, request: ReadRequest) -> ProgressResult:
        return ProgressResult.success(Operation.READ, "x", {"When": datetime.datetime(2024, 1, 1)})


async def test_harness_fails_a_result_that_cannot_cross_the_wire() -> None:
    with pytest.raises(WireError, match="not JSON serializable"):
        await PluginHarness(Unsendable()).read(THING, "x")


async def test_harness_fails_a_result_with_an_infinite_retry_after() -> None:
    class RetriesNever(MiniPlugin):
        async def read(self, request: ReadRequest) -> ProgressResult:
            return ProgressResult.success(Operation.READ, "x", {}, retry_after=float("inf"))

    with pytest.raises(WireError, match="OverflowError"):
        await PluginHarness(RetriesNever()).read(THING, "x")


async def test_harness_fails_a_result_of_the_wrong_kind() -> None:
    class ListsOnCreate(MiniPlugin):
        async def create(self, request: CreateRequest) -> ProgressResult:
            return ListResult([])  # type: ignore[return-value]

    with pytest.raises(WireError, match="CreateRequest must be answered with a ProgressResult"):
        await PluginHarness(ListsOnCreate()).create(THING, {})


async def test_harness_lets_plugin_exceptions_through() -> None:
    with pytest.raises(KeyError, match="missing"):
        await PluginHarness(MiniPlugin()).read(THING, "missing")


async def test_run_to_completion_polls_status_until_done() -> None:
    class Slow(MiniPlugin):
        polls = 0

        async def create(self, request: CreateRequest) -> ProgressResult:
            return ProgressResult.in_progress(Operation.CREATE, "req-9", resource_type=THING)

        async def status(self, request: StatusRequest) -> ProgressResult:
            assert (request.request_id, request.resource_type) == ("req-9", THING)
            self.polls += 1
            if self.polls < 3:
                return ProgressResult.in_progress(Operation.CREATE, "req-9")
            return ProgressResult.success(Operation.CREATE, "a", {"Done": True})

    plugin = Slow()
    box = PluginHarness(plugin)
    done = await box.run_to_completion(await box.create(THING, {}))
    assert (done.status, done.properties, plugin.polls) == (OperationStatus.SUCCESS, {"Done": True}, 3)

    just_enough = PluginHarness(Slow(), max_polls=3)
    assert (await just_enough.run_to_completion(await just_enough.create(THING, {}))).properties == {
        "Done": True
    }
    too_few = PluginHarness(Slow(), max_polls=2)
    with pytest.raises(AssertionError, match="still in progress after 2 polls"):
        await too_few.run_to_completion(await too_few.create(THING, {}))


# ---------------------------------------------------------------- the runtime agrees with the harness


async def _next_reply(stream: AgentSideStream) -> OperationReply | None:
    while (frame := await stream.receive()) is not None:
        if isinstance(frame, OperationReply):
            return frame
    return None


async def test_runtime_answers_plugin_error_for_a_result_that_cannot_cross_the_wire() -> None:
    pair = MemoryStreamPair()
    stop = asyncio.Event()
    settings = PluginSettings("127.0.0.1:1", "mini@test", "cookie", heartbeat_interval=5.0)
    session = asyncio.create_task(_Session(Unsendable(), pair.plugin, settings).run(stop))
    reply_task = asyncio.create_task(_next_reply(pair.agent))
    try:
        await pair.agent.send(OperationCall(1, ReadRequest(THING, "x", TargetInfo("t", "Mini"))))
        await asyncio.wait({reply_task, session}, timeout=2, return_when=asyncio.FIRST_COMPLETED)
        assert not session.done(), f"the session died: {session.exception()!r}"
        reply = reply_task.result()
    finally:
        stop.set()
        pair.close()
        await asyncio.gather(session, reply_task, return_exceptions=True)
    assert reply is not None
    assert isinstance(reply.result, ProgressResult)
    assert reply.result.error_code is ErrorCode.PLUGIN_ERROR
