"""Two connected FrameStreams in memory, encoding through the real codec: the plugin stream without gRPC.

    pair = MemoryStreamPair()
    hub_task = asyncio.create_task(hub.handle(pair.agent))   # the agent's end
    ack = await handshake(pair.plugin, cookie)                # a scripted plugin's end
    pair.close()                                              # both ends now read EOF

Each message is serialised to bytes and parsed back on the way, as gRPC would. Once the pair is
closed, reads return ``grpc.aio.EOF`` and writes fail (the FrameStream turns that into
StreamClosed), like a gRPC stream whose peer went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import grpc.aio

from formae.agent.hub import PluginHub
from formae.agent.registry import Location, PluginRegistry
from formae.plugin.base import ResourcePlugin
from formae.plugin.dispatch import dispatch
from formae.wire import PROTOCOL_VERSIONS, auth
from formae.wire.codec import decode_agent_frame, decode_plugin_frame, encode_agent_frame, encode_plugin_frame
from formae.wire.frames import Announcement, AnnouncementAck, Challenge, OperationCall, OperationReply
from formae.wire.transport import AgentSideStream, FrameStream, PluginSideStream, StreamClosed
from formae.wire.types import ResourceSchema


class _Connection:
    def __init__(self) -> None:
        self.closed = False
        self.to_agent: asyncio.Queue[Any] = asyncio.Queue()
        self.to_plugin: asyncio.Queue[Any] = asyncio.Queue()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.to_agent.put_nowait(grpc.aio.EOF)
            self.to_plugin.put_nowait(grpc.aio.EOF)


class _End:
    """One side's raw stream: what FrameStream wraps in place of a gRPC call or servicer context."""

    def __init__(
        self, connection: _Connection, inbox: asyncio.Queue[Any], outbox: asyncio.Queue[Any]
    ) -> None:
        self._connection = connection
        self._inbox = inbox
        self._outbox = outbox

    async def read(self) -> Any:
        message = await self._inbox.get()
        if message is grpc.aio.EOF:
            self._inbox.put_nowait(grpc.aio.EOF)  # every later read sees the end too
        return message

    async def write(self, message: Any) -> None:
        if self._connection.closed:
            raise RuntimeError("stream closed")
        self._outbox.put_nowait(type(message).FromString(message.SerializeToString()))


class MemoryStreamPair:
    def __init__(self, peer: str = "memory:plugin") -> None:
        self._connection = _Connection()
        c = self._connection
        self.agent: AgentSideStream = FrameStream(
            _End(c, c.to_agent, c.to_plugin), decode_plugin_frame, encode_agent_frame, peer
        )
        self.plugin: PluginSideStream = FrameStream(
            _End(c, c.to_plugin, c.to_agent), decode_agent_frame, encode_plugin_frame, "memory:agent"
        )

    @property
    def closed(self) -> bool:
        return self._connection.closed

    def close(self) -> None:
        """End the stream for both sides, as a plugin process exiting would."""
        self._connection.close()

    def send_raw_to_agent(self, message: Any) -> None:
        """Put a protobuf PluginFrame on the wire as is, bypassing the encoder (for malformed frames)."""
        self._connection.to_agent.put_nowait(message)


# ---------------------------------------------------------------- a scripted plugin


def announcement(
    challenge: Challenge,
    cookie: str,
    *,
    namespace: str = "FakeAWS",
    node: str = "fake-aws@test",
    types: tuple[str, ...] = ("FakeAWS::S3::Bucket",),
    protocol_versions: tuple[int, ...] = PROTOCOL_VERSIONS,
    rate_limit: float = 0.0,
    plugin_nonce: bytes | None = None,
) -> Announcement:
    nonce = plugin_nonce or auth.new_nonce()
    return Announcement(
        namespace=namespace,
        plugin_name="fake-aws",
        plugin_version="1.0.0",
        protocol_versions=protocol_versions,
        node=node,
        rate_limit=rate_limit,
        max_concurrency=0,
        resource_types=tuple(ResourceSchema(t, "Id") for t in types),
        plugin_nonce=nonce,
        proof=auth.plugin_proof(cookie, challenge.agent_nonce, nonce),
        pid=os.getpid(),
        heartbeat_interval=1.0,
    )


async def handshake(
    stream: PluginSideStream, cookie: str, **claims: Any
) -> tuple[Challenge, Announcement, AnnouncementAck]:
    """The plugin's side of the handshake: read the challenge, announce, read the ack."""
    challenge = await stream.receive()
    assert isinstance(challenge, Challenge), challenge
    sent = announcement(challenge, cookie, **claims)
    await stream.send(sent)
    ack = await stream.receive()
    assert isinstance(ack, AnnouncementAck), ack
    return challenge, sent, ack


async def serve_calls(plugin: ResourcePlugin, stream: PluginSideStream) -> None:
    """Answer every OperationCall with ``plugin`` until the stream ends; calls run concurrently."""
    async with asyncio.TaskGroup() as calls:
        while (frame := await stream.receive()) is not None:
            if isinstance(frame, OperationCall):
                calls.create_task(_answer(plugin, stream, frame))


async def _answer(plugin: ResourcePlugin, stream: PluginSideStream, call: OperationCall) -> None:
    result = await dispatch(plugin, call.request)
    with contextlib.suppress(StreamClosed):  # the agent went away meanwhile: nobody to tell
        await stream.send(OperationReply(call.call_id, result))


@contextlib.asynccontextmanager
async def connected(
    plugin: ResourcePlugin,
    registry: PluginRegistry,
    *,
    cookie: str = "test-cookie",
    node: str = "fake-aws@test",
) -> AsyncIterator[MemoryStreamPair]:
    """``plugin`` announced through a real PluginHub into ``registry`` and serving calls until exit."""
    pair = MemoryStreamPair(peer=f"memory:{node}")
    hub = PluginHub(registry, cookie, "agent@test", lambda _node, _pid: Location.LOCAL)
    types = tuple(schema.type for schema in plugin.schemas())
    tasks = [asyncio.create_task(hub.handle(pair.agent), name="hub")]
    try:
        _, _, ack = await handshake(pair.plugin, cookie, namespace=plugin.namespace, node=node, types=types)
        assert ack.accepted, ack.reason
        tasks.append(asyncio.create_task(serve_calls(plugin, pair.plugin), name="plugin"))
        yield pair
    finally:  # not a TaskGroup: a failing test body must surface as itself, not inside an ExceptionGroup
        pair.close()
        await asyncio.gather(*tasks)
