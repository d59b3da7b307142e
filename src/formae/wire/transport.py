"""The gRPC stream that carries frames: the agent's server and the plugin's dialer.

Both ends see a ``FrameStream``: ``send`` a frame, ``receive`` the next one (None once the peer
has closed). Writes are serialised because a gRPC stream takes one write at a time, while many
operations share the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

import grpc
import grpc.aio

from formae._proto.formae.plugin.v1 import plugin_pb2_grpc
from formae.wire.codec import (
    decode_agent_frame,
    decode_plugin_frame,
    encode_agent_frame,
    encode_plugin_frame,
)
from formae.wire.frames import AgentFrame, PluginFrame

In = TypeVar("In")
Out = TypeVar("Out")

_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 5_000),
    ("grpc.keepalive_timeout_ms", 3_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]
_SERVER_OPTIONS = [
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


class StreamClosed(Exception):
    """The peer went away, or the stream failed; pending work on it cannot complete."""


class _RawStream(Protocol):
    async def read(self) -> Any: ...
    async def write(self, message: Any) -> None: ...


class FrameStream(Generic[In, Out]):
    def __init__(
        self,
        raw: _RawStream,
        decode: Callable[[Any], In],
        encode: Callable[[Out], Any],
        peer: str,
    ) -> None:
        self._raw = raw
        self._decode = decode
        self._encode = encode
        self._write_lock = asyncio.Lock()
        self.peer = peer

    async def send(self, frame: Out) -> None:
        message = self._encode(frame)
        async with self._write_lock:
            try:
                await self._raw.write(message)
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, RuntimeError) as error:
                raise StreamClosed(f"cannot send to {self.peer}: {describe_error(error)}") from None

    async def receive(self) -> In | None:
        try:
            message = await self._raw.read()
        except grpc.aio.AioRpcError as error:
            raise StreamClosed(f"stream from {self.peer} failed: {describe_error(error)}") from None
        if message is grpc.aio.EOF:
            return None
        return self._decode(message)


def describe_error(error: BaseException) -> str:
    """A readable reason for a log line, even for exceptions without a message (a timeout)."""
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    if isinstance(error, TimeoutError):
        return str(error) or "timed out"
    return str(error) or type(error).__name__


AgentSideStream = FrameStream[PluginFrame, AgentFrame]
PluginSideStream = FrameStream[AgentFrame, PluginFrame]
StreamHandler = Callable[[AgentSideStream], Awaitable[None]]


class _Servicer(plugin_pb2_grpc.PluginHubServicer):
    def __init__(self, handler: StreamHandler) -> None:
        self._handler = handler

    async def Connect(self, request_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:  # noqa: N802
        stream: AgentSideStream = FrameStream(
            context, decode_plugin_frame, encode_agent_frame, context.peer()
        )
        await self._handler(stream)


async def start_hub_server(address: str, handler: StreamHandler) -> tuple[grpc.aio.Server, int]:
    """Serve PluginHub.Connect on ``address`` (host:port, port 0 picks one); returns the bound port."""
    server = grpc.aio.server(options=_SERVER_OPTIONS)
    plugin_pb2_grpc.add_PluginHubServicer_to_server(_Servicer(handler), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen for plugins on {address}")
    await server.start()
    return server, port


class PluginConnection:
    """The plugin's end: a channel to the agent and the one Connect stream on it."""

    def __init__(self, address: str) -> None:
        self._channel = grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
        stub = plugin_pb2_grpc.PluginHubStub(self._channel)  # type: ignore[no-untyped-call]
        self._call = stub.Connect()
        self.stream: PluginSideStream = FrameStream(
            self._call, decode_agent_frame, encode_plugin_frame, address
        )

    async def close(self) -> None:
        self._call.cancel()
        await self._channel.close(grace=None)
