"""PluginLink: the agent's handle on one connected plugin, used to call its operations.

Calls from many resource updaters share the plugin's one stream; each gets a call id and a future
that the reply resolves. When the stream ends, every pending call fails with PluginUnavailable at
once, so no caller waits on a plugin that is gone.
"""

from __future__ import annotations

import asyncio
import itertools

from formae.wire.frames import OperationCall, OperationReply
from formae.wire.transport import AgentSideStream, StreamClosed
from formae.wire.types import OperationRequest, OperationResult


class PluginUnavailable(Exception):
    """The plugin went away, or stopped answering, before the call completed. Retryable."""


class PluginLink:
    def __init__(self, stream: AgentSideStream, namespace: str, node: str) -> None:
        self.namespace = namespace
        self.node = node
        self._stream = stream
        self._call_ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[OperationResult]] = {}
        self._closed = asyncio.Event()
        self._close_reason = ""

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    async def call(self, request: OperationRequest, timeout: float | None = None) -> OperationResult:
        """Send one operation and wait for its reply; PluginUnavailable if the link dies first."""
        if self.is_closed:
            raise PluginUnavailable(f"plugin {self.node} is gone: {self._close_reason}")
        call_id = next(self._call_ids)
        reply: asyncio.Future[OperationResult] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = reply
        try:
            await self._stream.send(OperationCall(call_id, request, timeout or 0.0))
            return await asyncio.wait_for(reply, timeout)
        except StreamClosed as error:
            if reply.done() and not reply.cancelled():
                reply.exception()  # close() already failed it; mark it retrieved, the caller hears this one
            raise PluginUnavailable(str(error)) from None
        except TimeoutError:
            raise PluginUnavailable(f"plugin {self.node} did not answer within {timeout}s") from None
        finally:
            self._pending.pop(call_id, None)

    def deliver(self, reply: OperationReply) -> bool:
        """Resolve the call this reply answers; False when nobody is waiting for it any more."""
        future = self._pending.get(reply.call_id)
        if future is None or future.done():
            return False
        future.set_result(reply.result)
        return True

    def close(self, reason: str) -> None:
        if self.is_closed:
            return
        self._close_reason = reason
        self._closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PluginUnavailable(f"plugin {self.node} is gone: {reason}"))

    async def wait_closed(self) -> str:
        await self._closed.wait()
        return self._close_reason
