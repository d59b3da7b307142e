"""The SDK runtime against a scripted agent in memory: handshake, stopping, and what may not kill it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from formae.plugin import (
    CreateRequest,
    DeleteRequest,
    ErrorCode,
    Operation,
    ProgressResult,
    ReadRequest,
    ResourcePlugin,
    ResourceSchema,
    TargetInfo,
    UpdateRequest,
    _runtime,
)
from formae.plugin._runtime import Outcome, _connect_once, _Session
from formae.plugin.identity import Identity, IdentityKeeper
from formae.plugin.settings import PluginSettings
from formae.wire import auth
from formae.wire.frames import Announcement, AnnouncementAck, Challenge, OperationCall, OperationReply
from formae.wire.transport import AgentSideStream
from tests.unit.memory_stream import MemoryStreamPair

pytestmark = pytest.mark.timeout(10)

THING = "Mini::Thing::Widget"
TARGET = TargetInfo("t", "Mini")
COOKIE = "cookie"
SETTINGS = PluginSettings("127.0.0.1:1", "mini@test", COOKIE, heartbeat_interval=5.0)


class Mini(ResourcePlugin):
    name, namespace = "mini", "Mini"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    def schemas(self) -> list[ResourceSchema]:
        return [ResourceSchema(THING, "Id")]

    async def create(self, request: CreateRequest) -> ProgressResult:
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return ProgressResult.success(Operation.CREATE, "never")

    async def read(self, request: ReadRequest) -> ProgressResult:
        return ProgressResult.success(Operation.READ, request.native_id, {}, retry_after=float("inf"))

    async def update(self, request: UpdateRequest) -> ProgressResult:
        deep: Any = []
        for _ in range(100_000):
            deep = [deep]
        return ProgressResult.success(Operation.UPDATE, request.native_id, {"Deep": deep})

    async def delete(self, request: DeleteRequest) -> ProgressResult:
        return ProgressResult.success(Operation.DELETE, request.native_id)


@pytest.fixture
def pair(monkeypatch: pytest.MonkeyPatch) -> MemoryStreamPair:
    """The memory pair stands in for the gRPC connection ``_connect_once`` would dial."""
    pair = MemoryStreamPair()

    class Connection:
        def __init__(self, *_: Any) -> None:
            self.stream = pair.plugin

        async def close(self) -> None:
            pair.close()

    monkeypatch.setattr(_runtime, "PluginConnection", Connection)
    return pair


async def scripted_agent(
    stream: AgentSideStream, ack: Callable[[Announcement, bytes], AnnouncementAck]
) -> None:
    nonce = auth.new_nonce()
    await stream.send(Challenge(nonce, (1,), "agent@test"))
    announcement = await stream.receive()
    assert isinstance(announcement, Announcement)
    await stream.send(ack(announcement, nonce))


def proof(announcement: Announcement, nonce: bytes) -> bytes:
    return auth.agent_proof(COOKIE, nonce, announcement.plugin_nonce)


async def test_stopping_during_the_handshake_does_not_wait_for_its_timeout(pair: MemoryStreamPair) -> None:
    """An agent that accepted the connection but says nothing (a frozen host) must not delay SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stop.set)
    started = time.monotonic()

    outcome = await _connect_once(Mini(), SETTINGS, IdentityKeeper(Identity(None, COOKIE)), stop)

    assert outcome is Outcome.STOPPED
    assert time.monotonic() - started < 1.0  # the handshake allows itself 10 s


async def test_an_ack_naming_a_version_this_plugin_does_not_speak_is_a_refusal(
    pair: MemoryStreamPair,
) -> None:
    def ack(announcement: Announcement, nonce: bytes) -> AnnouncementAck:
        return AnnouncementAck(True, protocol_version=2, proof=proof(announcement, nonce))

    agent = asyncio.create_task(scripted_agent(pair.agent, ack))
    outcome = await _connect_once(Mini(), SETTINGS, IdentityKeeper(Identity(None, COOKIE)), asyncio.Event())
    await agent

    assert outcome is Outcome.REFUSED


@pytest.fixture
async def session(pair: MemoryStreamPair) -> AsyncIterator[tuple[Mini, asyncio.Event, asyncio.Task[bool]]]:
    plugin, stop = Mini(), asyncio.Event()
    task = asyncio.create_task(_Session(plugin, pair.plugin, SETTINGS).run(stop))
    yield plugin, stop, task
    stop.set()
    pair.close()
    await asyncio.gather(task, return_exceptions=True)


async def next_reply(stream: AgentSideStream) -> OperationReply:
    while (frame := await stream.receive()) is not None:
        if isinstance(frame, OperationReply):
            return frame
    raise AssertionError("the stream ended without a reply")


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (ReadRequest(THING, "x", TARGET), "OverflowError"),  # retry_after=inf
        (UpdateRequest(THING, "x", {}, {}, [], TARGET), "RecursionError"),
    ],
    ids=["infinite-retry-after", "deeply-nested-properties"],
)
async def test_a_result_that_cannot_be_encoded_fails_its_call_not_the_plugin(
    pair: MemoryStreamPair,
    session: tuple[Mini, asyncio.Event, asyncio.Task[bool]],
    request_: Any,
    error: str,
) -> None:
    *_, task = session
    await pair.agent.send(OperationCall(1, request_))
    reply = await asyncio.wait_for(next_reply(pair.agent), 5)

    assert isinstance(reply.result, ProgressResult)
    assert reply.result.error_code is ErrorCode.PLUGIN_ERROR
    assert "result cannot be encoded" in reply.result.message
    assert not task.done(), repr(task.exception())


async def test_stop_cancels_calls_in_flight_and_returns(
    pair: MemoryStreamPair, session: tuple[Mini, asyncio.Event, asyncio.Task[bool]]
) -> None:
    plugin, stop, task = session
    await pair.agent.send(OperationCall(1, CreateRequest(THING, "a", {}, TARGET)))
    await asyncio.wait_for(plugin.started.wait(), 5)

    stop.set()

    assert await asyncio.wait_for(task, 2) is True
    assert plugin.cancelled


async def test_a_task_that_dies_of_a_bug_ends_the_session_and_leaves_no_task_behind(
    pair: MemoryStreamPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: _Session, call: OperationCall) -> None:
        raise RuntimeError("bug in the runtime")

    monkeypatch.setattr(_Session, "_serve", broken)
    before = asyncio.all_tasks()
    task = asyncio.create_task(_Session(Mini(), pair.plugin, SETTINGS).run(asyncio.Event()))
    await pair.agent.send(OperationCall(1, DeleteRequest(THING, "x", TARGET)))

    with pytest.raises(ExceptionGroup) as raised:
        await asyncio.wait_for(task, 2)

    assert raised.group_contains(RuntimeError, match="bug in the runtime")
    await asyncio.sleep(0)
    assert {t.get_name() for t in asyncio.all_tasks() - before - {task}} == set()
    pair.close()
