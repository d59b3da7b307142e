"""The gRPC stream that carries frames: the agent's server and the plugin's dialer.

Both ends see a ``FrameStream``: ``send`` a frame, ``receive`` the next one (None once the peer
has closed). Writes are serialised because a gRPC stream takes one write at a time, while many
operations share the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import DecodeError
from grpc._cython import cygrpc

from formae._proto.formae.plugin.v1 import plugin_pb2 as pb
from formae._proto.formae.plugin.v1 import plugin_pb2_grpc
from formae.wire.codec import (
    ProtocolError,
    decode_agent_frame,
    decode_plugin_frame,
    encode_agent_frame,
    encode_plugin_frame,
)
from formae.wire.frames import AgentFrame, PluginFrame
from formae.wire.join import JoinAsk, JoinGrant, JoinToken, decode_grant, encode_grant, encode_request
from formae.wire.tls import ClientCredentials, channel_options, server_credentials

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


_STREAM_GONE = (
    grpc.aio.AioRpcError,
    grpc.aio.UsageError,
    RuntimeError,
    asyncio.InvalidStateError,
    cygrpc.ExecuteBatchError,
)
"""What grpc.aio raises writing to a stream that has ended; InvalidStateError is "RPC already finished",
met when the agent dropped this plugin while a reply was being written; ExecuteBatchError ('Failed
"execute_batch"') when the peer was killed while the agent wrote to it (seen in the SIGKILL storms)."""


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
        peer_certificate: bytes | None = None,
    ) -> None:
        self._raw = raw
        self.peer_certificate = peer_certificate
        """The client certificate TLS verified (agent side), or None without TLS."""
        self._decode = decode
        self._encode = encode
        self._write_lock = asyncio.Lock()
        self.peer = peer

    async def send(self, frame: Out) -> None:
        message = self._encode(frame)
        async with self._write_lock:
            try:
                await self._raw.write(message)
            except _STREAM_GONE as error:
                raise StreamClosed(f"cannot send to {self.peer}: {describe_error(error)}") from None

    async def receive(self) -> In | None:
        """The next frame; raises StreamClosed, or ProtocolError for bytes that are not a frame."""
        try:
            message = await self._raw.read()
        except grpc.aio.AioRpcError as error:
            raise StreamClosed(f"stream from {self.peer} failed: {describe_error(error)}") from None
        except DecodeError as error:  # the server parses requests inside read(); a client gets INTERNAL
            raise ProtocolError(f"{self.peer} sent bytes that are not a protobuf frame: {error}") from None
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
JoinHandler = Callable[[JoinAsk], Awaitable[JoinGrant]]


class JoinDenied(Exception):
    """Raised by a join handler: the plugin is told the reason with PERMISSION_DENIED."""


def peer_certificate(context: grpc.aio.ServicerContext[Any, Any]) -> bytes | None:
    """The client certificate the peer presented (PEM) and TLS verified, if any."""
    certificates = context.auth_context().get("x509_pem_cert")
    return bytes(next(iter(certificates))) if certificates else None


class _Servicer(plugin_pb2_grpc.PluginHubServicer):
    def __init__(self, handler: StreamHandler, join: JoinHandler | None) -> None:
        self._handler = handler
        self._join = join

    async def Connect(self, request_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:  # noqa: N802
        stream: AgentSideStream = FrameStream(
            context, decode_plugin_frame, encode_agent_frame, context.peer(), peer_certificate(context)
        )
        await self._handler(stream)

    async def Join(  # noqa: N802 - the gRPC method name
        self, request: pb.JoinRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.JoinResponse:
        if self._join is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "this agent does not use TLS: nothing to join"
            )
        assert self._join is not None
        ask = JoinAsk(
            request.token_id, request.secret, request.certificate_request, request.node, context.peer()
        )
        try:
            return encode_grant(await self._join(ask))
        except JoinDenied as denied:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(denied))
            raise  # abort raises; this line only satisfies the type checker


@dataclass(frozen=True)
class ServerTls:
    certificate: bytes
    key: bytes
    ca_certificate: bytes

    def __repr__(self) -> str:
        return "ServerTls(…)"


async def start_hub_server(
    address: str, handler: StreamHandler, *, tls: ServerTls | None = None, join: JoinHandler | None = None
) -> tuple[grpc.aio.Server, int]:
    """Serve PluginHub on ``address`` (host:port, port 0 picks one); returns the bound port.

    With ``tls`` the port speaks TLS only, and ``join`` answers plugins that hold a join token.
    """
    server = grpc.aio.server(options=_SERVER_OPTIONS)
    servicer = _Servicer(handler, join if tls is not None else None)
    plugin_pb2_grpc.add_PluginHubServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    if tls is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(
            address, server_credentials(tls.certificate, tls.key, tls.ca_certificate)
        )
    if port == 0:
        raise OSError(f"cannot listen for plugins on {address}")
    await server.start()
    return server, port


def _channel(address: str, credentials: ClientCredentials | None) -> grpc.aio.Channel:
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
    options = _CHANNEL_OPTIONS + channel_options()
    return grpc.aio.secure_channel(address, credentials.channel_credentials(), options=options)


class PluginConnection:
    """The plugin's end: a channel to the agent and the one Connect stream on it."""

    def __init__(self, address: str, credentials: ClientCredentials | None = None) -> None:
        self._channel = _channel(address, credentials)
        stub = plugin_pb2_grpc.PluginHubStub(self._channel)  # type: ignore[no-untyped-call]
        self._call = stub.Connect()
        self.stream: PluginSideStream = FrameStream(
            self._call, decode_agent_frame, encode_plugin_frame, address
        )

    async def close(self) -> None:
        self._call.cancel()
        await self._channel.close(grace=None)


async def join(address: str, token: JoinToken, csr: bytes, node: str, timeout: float = 15.0) -> JoinGrant:
    """Exchange a join token for a certificate, verifying the agent with the token's CA.

    Raises ``JoinDenied`` when the agent refuses, ``StreamClosed`` when it cannot be reached.
    """
    options = _CHANNEL_OPTIONS + channel_options()
    bootstrap = ClientCredentials(token.bootstrap_certificate, token.bootstrap_key, token.ca_certificate)
    async with grpc.aio.secure_channel(address, bootstrap.channel_credentials(), options=options) as channel:
        stub = plugin_pb2_grpc.PluginHubStub(channel)  # type: ignore[no-untyped-call]
        try:
            response = await stub.Join(encode_request(token, csr, node), timeout=timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION):
                raise JoinDenied(error.details() or error.code().name) from None
            raise StreamClosed(f"cannot join the agent at {address}: {describe_error(error)}") from None
    return decode_grant(response)
