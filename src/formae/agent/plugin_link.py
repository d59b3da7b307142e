"""PluginLink: the agent's handle on one connected plugin, used to call its operations.

Calls from many resource updaters share the plugin's one stream; each gets a call id and a future
that the reply resolves. When the stream ends, every pending call fails with PluginUnavailable at
once, so no caller waits on a plugin that is gone.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any, Protocol

from formae.telemetry.tracing import TraceContext
from formae.wire.frames import MalformedReply, OperationCall, OperationReply
from formae.wire.transport import AgentSideStream, StreamClosed
from formae.wire.types import ErrorCode, OperationRequest, OperationResult, ProgressResult, operation_of


class PluginUnavailable(Exception):
    """The plugin went away, or stopped answering, before the call completed. Retryable."""


@dataclass(frozen=True, slots=True)
class _Call:
    request: OperationRequest
    reply: asyncio.Future[OperationResult]


class CallGate(Protocol):
    """What every request passes on its way out and every answer on its way in (secrets: SecretGate)."""

    def reveal(self, request: OperationRequest) -> tuple[OperationRequest, Any]: ...

    def conceal(self, result: OperationResult, revealed: Any) -> OperationResult: ...


class PluginLink:
    def __init__(
        self, stream: AgentSideStream, namespace: str, node: str, gate: CallGate | None = None
    ) -> None:
        self._gate = gate
        self.namespace = namespace
        self.node = node
        self._stream = stream
        self._call_ids = itertools.count(1)
        self._pending: dict[int, _Call] = {}
        self._closed = asyncio.Event()
        self._close_reason = ""
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    async def call(
        self, request: OperationRequest, timeout: float | None = None, trace: TraceContext | None = None
    ) -> OperationResult:
        """Send one operation and wait for its reply; PluginUnavailable if the link dies first.

        ``trace`` is the caller's span, sent with the call so that the plugin's spans join its trace.
        """
        if self.is_closed:
            raise PluginUnavailable(f"plugin {self.node} is gone: {self._close_reason}")
        if self._gate is None:
            return await self._call(request, timeout, trace)
        sent, revealed = self._gate.reveal(request)
        return self._gate.conceal(await self._call(sent, timeout, trace), revealed)

    async def _call(
        self, request: OperationRequest, timeout: float | None, trace: TraceContext | None
    ) -> OperationResult:
        call_id = next(self._call_ids)
        reply: asyncio.Future[OperationResult] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = _Call(request, reply)
        self._idle.clear()
        frame = OperationCall(call_id, request, timeout or 0.0)
        if trace is not None:
            frame = frame._replace(traceparent=trace.traceparent, tracestate=trace.tracestate)
        try:
            await self._stream.send(frame)
            return await asyncio.wait_for(reply, timeout)
        except StreamClosed as error:
            if reply.done() and not reply.cancelled():
                reply.exception()  # close() already failed it; mark it retrieved, the caller hears this one
            raise PluginUnavailable(str(error)) from None
        except TimeoutError:
            raise PluginUnavailable(f"plugin {self.node} did not answer within {timeout}s") from None
        finally:
            self._pending.pop(call_id, None)
            if not self._pending:
                self._idle.set()

    def deliver(self, reply: OperationReply | MalformedReply) -> bool:
        """Resolve the call this reply answers; False when nobody is waiting for it any more.

        A reply the codec could not read fails its own call, as the operation that call was.
        """
        call = self._pending.get(reply.call_id)
        if call is None or call.reply.done():
            return False
        if isinstance(reply, MalformedReply):
            operation = operation_of(call.request)
            message = f"malformed reply: {reply.reason}"
            call.reply.set_result(ProgressResult.failure(operation, ErrorCode.PLUGIN_ERROR, message))
        else:
            call.reply.set_result(reply.result)
        return True

    def close(self, reason: str) -> None:
        if self.is_closed:
            return
        self._close_reason = reason
        self._closed.set()
        for call in self._pending.values():
            if not call.reply.done():
                call.reply.set_exception(PluginUnavailable(f"plugin {self.node} is gone: {reason}"))

    async def wait_idle(self) -> None:
        """Until no call is in flight: how a plugin being replaced is drained before it is stopped."""
        await self._idle.wait()

    @property
    def closed(self) -> asyncio.Event:
        """Set once the link is closed (``close``); wait on it, never set it."""
        return self._closed

    @property
    def close_reason(self) -> str:
        return self._close_reason

    async def wait_closed(self) -> str:
        await self._closed.wait()
        return self._close_reason
