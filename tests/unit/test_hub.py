"""PluginHub.handle driven by a scripted plugin over an in-memory stream: handshake, refusals, liveness."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from formae._proto.formae.plugin.v1 import plugin_pb2 as pb
from formae.agent.hub import PluginHub
from formae.agent.plugin_link import PluginLink, PluginUnavailable
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import Location, PluginRegistry
from formae.model import Operation
from formae.wire import PROTOCOL_VERSIONS, auth
from formae.wire.codec import decode_plugin_frame, encode_agent_frame
from formae.wire.frames import Challenge, Heartbeat, HeartbeatAck, OperationCall, OperationReply
from formae.wire.transport import FrameStream
from formae.wire.types import (
    CreateRequest,
    DeleteRequest,
    ErrorCode,
    ListResult,
    OperationRequest,
    ProgressResult,
    ReadRequest,
    TargetInfo,
)
from tests.unit.fakes import FakeClock
from tests.unit.memory_stream import MemoryStreamPair, announcement, handshake

pytestmark = pytest.mark.timeout(10)

COOKIE = "the-real-cookie-3f9a"
WRONG = "a-wrong-cookie-77c1"
READ = ReadRequest("FakeAWS::S3::Bucket", "b-1", TargetInfo("t", "FakeAWS"))


@dataclass
class Agent:
    registry: PluginRegistry
    pair: MemoryStreamPair
    task: asyncio.Task[None]
    clock: FakeClock
    located: list[tuple[str, int]]

    async def finished(self) -> None:
        await asyncio.wait_for(self.task, 1)


async def until(condition: Callable[[], object], timeout: float = 1.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the registry has no event for this
            await asyncio.sleep(0.001)


@pytest.fixture
async def agent(clock: FakeClock) -> AsyncIterator[Agent]:
    located: list[tuple[str, int]] = []

    def locate(node: str, pid: int) -> Location:
        located.append((node, pid))
        return Location.REMOTE

    registry = PluginRegistry(RateLimiter(), heartbeat_timeout=3.0, clock=clock)
    hub = PluginHub(registry, COOKIE, "agent@test:49684", locate, handshake_timeout=2.0)
    pair = MemoryStreamPair(peer="memory:plugin-1")
    task = asyncio.create_task(hub.handle(pair.agent))
    yield Agent(registry, pair, task, clock, located)
    pair.close()
    await asyncio.wait_for(task, 1)


async def test_right_cookie_is_accepted_with_an_agent_proof_and_registered(
    agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        challenge, sent, ack = await handshake(agent.pair.plugin, COOKIE, node="fake-aws@box", rate_limit=5)

    assert challenge.agent_node == "agent@test:49684"
    assert challenge.protocol_versions == PROTOCOL_VERSIONS
    assert len(challenge.agent_nonce) == auth.NONCE_BYTES
    assert ack.accepted
    assert ack.reason == ""
    assert ack.protocol_version == 1
    assert auth.verify(auth.agent_proof(COOKIE, challenge.agent_nonce, sent.plugin_nonce), ack.proof)
    assert not auth.verify(auth.agent_proof(WRONG, challenge.agent_nonce, sent.plugin_nonce), ack.proof)

    await until(agent.registry.plugins)
    [registered] = agent.registry.plugins()
    assert (registered.namespace, registered.node, registered.name, registered.version) == (
        "FakeAWS",
        "fake-aws@box",
        "fake-aws",
        "1.0.0",
    )
    assert (registered.location, registered.protocol_version, registered.rate_limit) == (
        Location.REMOTE,
        1,
        5,
    )
    assert registered.healthy
    assert registered.schemas == sent.resource_types
    assert agent.located == [("fake-aws@box", sent.pid)]
    assert agent.registry.lookup("FakeAWS") is registered.link
    assert "Plugin registered namespace=FakeAWS node=fake-aws@box" in caplog.text
    assert COOKIE not in caplog.text


async def test_each_stream_gets_a_fresh_challenge() -> None:
    registry = PluginRegistry(RateLimiter())
    hub = PluginHub(registry, COOKIE, "agent@test", lambda _n, _p: Location.LOCAL)
    nonces = []
    for _ in range(2):
        pair = MemoryStreamPair()
        task = asyncio.create_task(hub.handle(pair.agent))
        challenge = await pair.plugin.receive()
        assert isinstance(challenge, Challenge)
        nonces.append(challenge.agent_nonce)
        pair.close()
        await asyncio.wait_for(task, 1)
    assert nonces[0] != nonces[1]


async def test_wrong_cookie_is_refused_and_nothing_registered(
    agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        _, _, ack = await handshake(agent.pair.plugin, WRONG)
        await agent.finished()

    assert not ack.accepted
    assert "cookie" in ack.reason
    assert ack.proof == b""
    assert agent.registry.plugins() == []
    refusals = [r for r in caplog.records if r.levelno == logging.WARNING and "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert "wrong network cookie" in refusals[0].getMessage()
    assert "node=fake-aws@test" in refusals[0].getMessage()
    assert COOKIE not in caplog.text
    assert WRONG not in caplog.text
    assert "Plugin registered" not in caplog.text


async def test_no_common_protocol_version_is_refused_listing_both(
    agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        _, _, ack = await handshake(agent.pair.plugin, COOKIE, protocol_versions=(2, 3))
        await agent.finished()
    assert not ack.accepted
    assert ack.reason == "no common protocol version: agent speaks [1], plugin speaks [2, 3]"
    assert agent.registry.plugins() == []
    assert "agent speaks [1], plugin speaks [2, 3]" in caplog.text


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        (
            {"types": ("FakeAWS::S3::Bucket", "OtherCloud::S3::Bucket", "FakeAWSX::EC2::VPC")},
            "types outside namespace FakeAWS: OtherCloud::S3::Bucket, FakeAWSX::EC2::VPC",
        ),
        ({"namespace": "", "types": ()}, "announcement must name a namespace and a node"),
        ({"node": ""}, "announcement must name a namespace and a node"),
    ],
    ids=["foreign-types", "no-namespace", "no-node"],
)
async def test_bad_claims_are_refused(agent: Agent, claims: dict[str, object], reason: str) -> None:
    _, _, ack = await handshake(agent.pair.plugin, COOKIE, **claims)
    await agent.finished()
    assert not ack.accepted
    assert ack.reason == reason
    assert agent.registry.plugins() == []


async def test_heartbeats_are_acked_and_recorded(agent: Agent) -> None:
    await handshake(agent.pair.plugin, COOKIE)
    await until(agent.registry.plugins)
    agent.clock.advance(7.0)
    for sequence in (1, 2, 3):
        await agent.pair.plugin.send(Heartbeat(sequence, in_flight=0))
    acks = [await agent.pair.plugin.receive() for _ in range(3)]
    assert acks == [HeartbeatAck(1), HeartbeatAck(2), HeartbeatAck(3)]
    assert agent.registry.plugins()[0].last_heartbeat == 1007.0


async def test_replies_resolve_calls_and_late_replies_are_dropped(agent: Agent) -> None:
    await handshake(agent.pair.plugin, COOKIE)
    await until(agent.registry.plugins)
    link = agent.registry.lookup("FakeAWS")
    first = asyncio.create_task(link.call(READ))
    second = asyncio.create_task(link.call(READ))
    calls = [await agent.pair.plugin.receive() for _ in range(2)]
    assert all(isinstance(c, OperationCall) and c.request == READ for c in calls)
    ids = [c.call_id for c in calls if isinstance(c, OperationCall)]
    assert len(set(ids)) == 2

    answer = ProgressResult.success(Operation.READ, "b-1", {"BucketName": "b-1"})
    await agent.pair.plugin.send(OperationReply(9999, ListResult([])))  # nobody asked: dropped
    await agent.pair.plugin.send(OperationReply(ids[1], answer))
    await agent.pair.plugin.send(OperationReply(ids[0], ListResult([])))
    assert await asyncio.wait_for(second, 1) == answer
    assert await asyncio.wait_for(first, 1) == ListResult([])
    assert link.in_flight == 0
    assert agent.registry.plugins()[0].healthy


async def test_after_the_plugin_closes_it_is_unhealthy_and_pending_calls_fail(agent: Agent) -> None:
    await handshake(agent.pair.plugin, COOKIE)
    await until(agent.registry.plugins)
    link = agent.registry.lookup("FakeAWS")
    pending = asyncio.create_task(link.call(READ))
    assert isinstance(await agent.pair.plugin.receive(), OperationCall)

    agent.pair.close()
    await agent.finished()

    with pytest.raises(PluginUnavailable, match="stream closed by the plugin"):
        await asyncio.wait_for(pending, 1)
    [registered] = agent.registry.plugins()
    assert not registered.healthy
    assert registered.status_reason == "disconnected: stream closed by the plugin"
    with pytest.raises(PluginUnavailable, match="no healthy plugin for namespace FakeAWS"):
        agent.registry.lookup("FakeAWS")
    with pytest.raises(PluginUnavailable):
        await link.call(READ)


async def test_a_second_announcement_ends_the_stream(agent: Agent) -> None:
    challenge, _, _ = await handshake(agent.pair.plugin, COOKIE)
    await until(agent.registry.plugins)
    await agent.pair.plugin.send(announcement(challenge, COOKIE))
    await agent.finished()
    [registered] = agent.registry.plugins()
    assert not registered.healthy
    assert "unexpected Announcement after the handshake" in registered.status_reason


TARGET = TargetInfo("local", "FakeAWS")


@pytest.mark.parametrize(
    ("request_", "operation"),
    [
        (ReadRequest("FakeAWS::S3::Bucket", "b", TARGET), Operation.READ),
        (CreateRequest("FakeAWS::S3::Bucket", "b", {}, TARGET, "k"), Operation.CREATE),
        (DeleteRequest("FakeAWS::S3::Bucket", "b", TARGET), Operation.DELETE),
    ],
    ids=["read", "create", "delete"],
)
async def test_a_malformed_reply_fails_its_own_call_as_its_operation_and_the_stream_lives_on(
    agent: Agent, request_: OperationRequest, operation: Operation
) -> None:
    await handshake(agent.pair.plugin, COOKIE)
    await until(agent.registry.plugins)
    calling = asyncio.create_task(agent.registry.lookup("FakeAWS").call(request_))
    call = await agent.pair.plugin.receive()
    assert isinstance(call, OperationCall)

    bad = pb.ProgressResult(operation=pb.Operation.ValueType(77), status=pb.OPERATION_STATUS_SUCCESS)
    agent.pair.send_raw_to_agent(pb.PluginFrame(reply=pb.OperationReply(call_id=call.call_id, progress=bad)))
    result = await asyncio.wait_for(calling, 1.0)

    assert isinstance(result, ProgressResult)
    assert (result.operation, result.error_code) == (operation, ErrorCode.PLUGIN_ERROR)
    assert "unknown operation 77" in result.message
    [registered] = agent.registry.plugins()
    assert registered.healthy
    agent.pair.close()
    await agent.finished()


@pytest.mark.parametrize(
    "script",
    ["close", "heartbeat", "malformed"],
)
async def test_handshake_failures_are_logged_and_never_raise(
    agent: Agent, caplog: pytest.LogCaptureFixture, script: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="formae.agent.hub"):
        assert isinstance(await agent.pair.plugin.receive(), Challenge)
        if script == "close":
            agent.pair.close()
        elif script == "heartbeat":
            await agent.pair.plugin.send(Heartbeat(1, 0))
        else:
            schema = pb.ResourceTypeSchema(type="FakeAWS::S3::Bucket", json_schema=b"{nope")
            agent.pair.send_raw_to_agent(
                pb.PluginFrame(announcement=pb.Announcement(resource_types=[schema]))
            )
        await agent.finished()
    assert agent.registry.plugins() == []
    assert "Plugin handshake failed peer=memory:plugin-1" in caplog.text


async def test_handshake_timeout_is_logged_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    registry = PluginRegistry(RateLimiter())
    hub = PluginHub(registry, COOKIE, "agent@test", lambda _n, _p: Location.LOCAL, handshake_timeout=0.02)
    pair = MemoryStreamPair()
    with caplog.at_level(logging.WARNING, logger="formae.agent.hub"):
        await asyncio.wait_for(hub.handle(pair.agent), 1)  # the plugin never announces
    pair.close()
    assert registry.plugins() == []
    assert "Plugin handshake failed peer=memory:plugin" in caplog.text


async def test_handshake_timeout_says_it_timed_out(caplog: pytest.LogCaptureFixture) -> None:
    registry = PluginRegistry(RateLimiter())
    hub = PluginHub(registry, COOKIE, "agent@test", lambda _n, _p: Location.LOCAL, handshake_timeout=0.02)
    pair = MemoryStreamPair()
    with caplog.at_level(logging.WARNING, logger="formae.agent.hub"):
        await asyncio.wait_for(hub.handle(pair.agent), 1)
    pair.close()
    assert "timed out" in caplog.text


class _SendBlocksThenFails:
    """A raw stream whose write hangs until released, then fails as a dead gRPC stream does."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def read(self) -> object:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def write(self, message: object) -> None:
        await self.release.wait()
        raise RuntimeError("stream closed")


async def test_a_link_closed_during_a_send_leaves_no_unretrieved_future(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[object]] = []
    create_future = loop.create_future

    def recording() -> asyncio.Future[object]:
        futures.append(create_future())
        return futures[-1]

    monkeypatch.setattr(loop, "create_future", recording)
    raw = _SendBlocksThenFails()
    link = PluginLink(
        FrameStream(raw, decode_plugin_frame, encode_agent_frame, "memory:stuck"), "FakeAWS", "n@h"
    )
    call = asyncio.create_task(link.call(READ))
    await asyncio.sleep(0)  # the call is now blocked inside send()
    link.close("plugin went away")
    raw.release.set()
    with pytest.raises(PluginUnavailable, match="cannot send to memory:stuck"):
        await call
    reply = futures[0]  # the call's own future, created before send() waits on anything
    # asyncio logs an ERROR when it collects a future whose exception nobody retrieved; this flag says it will
    unretrieved = reply.done() and not reply.cancelled() and reply._log_traceback
    if unretrieved:
        reply.exception()  # retrieve it ourselves so this test's own log stays clean
    assert not unretrieved
