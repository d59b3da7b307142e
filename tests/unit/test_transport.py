"""The gRPC stream on loopback: what a peer's bytes can make ``FrameStream`` raise."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest

from formae.wire.codec import ProtocolError
from formae.wire.transport import AgentSideStream, StreamClosed, start_hub_server

pytestmark = pytest.mark.timeout(10)


async def test_bytes_that_are_not_a_frame_raise_protocol_error_on_the_agent_side() -> None:
    """The hub catches StreamClosed and ProtocolError; anything else would escape it."""
    seen: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def handler(stream: AgentSideStream) -> None:
        try:
            await stream.receive()
            seen.set_result(None)
        except (StreamClosed, ProtocolError) as error:
            seen.set_result(error)
        except BaseException as error:
            seen.set_result(error)
            raise

    server, port = await start_hub_server("127.0.0.1:0", handler)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            raw = channel.stream_stream(
                "/formae.plugin.v1.PluginHub/Connect",
                request_serializer=lambda data: data,
                response_deserializer=lambda data: data,
            )()
            await raw.write(b"\xff\xff\xff\xff not protobuf")
            error = await asyncio.wait_for(seen, 5)
            raw.cancel()
    finally:
        await server.stop(None)

    assert isinstance(error, ProtocolError), repr(error)
    assert "not a protobuf frame" in str(error)
