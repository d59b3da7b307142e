"""What ``run(plugin)`` does: connect out, prove the cookie, announce, heartbeat, serve, stop.

A plugin process keeps dialling until its agent answers, so it may start before the agent. Once
accepted it serves calls concurrently on the one stream until the agent goes away (then it exits,
or reconnects when FORMAE_PLUGIN_RECONNECT is set) or it is told to stop by SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import time
import traceback
from typing import TypeVar

from formae.backoff import exponential_delay, jittered
from formae.plugin.base import ResourcePlugin
from formae.plugin.dispatch import dispatch
from formae.plugin.identity import Identity, IdentityKeeper, obtain_identity
from formae.plugin.settings import PluginSettings
from formae.race import Interrupted, unless_set
from formae.telemetry.tracing import TraceContext, Tracing
from formae.wire import PROTOCOL_VERSIONS, auth
from formae.wire.codec import ProtocolError
from formae.wire.frames import (
    Announcement,
    AnnouncementAck,
    CertificateRenewal,
    Challenge,
    Heartbeat,
    HeartbeatAck,
    OperationCall,
    OperationReply,
)
from formae.wire.transport import JoinDenied, PluginConnection, PluginSideStream, StreamClosed, describe_error
from formae.wire.types import (
    ErrorCode,
    OperationRequest,
    OperationResult,
    ProgressResult,
    StatusRequest,
    operation_of,
)

log = logging.getLogger("formae.plugin")

HANDSHAKE_TIMEOUT = 10.0
EX_CONFIG = 78
"""Exit code when the agent refused this plugin: the cookie, token, namespace or version must change."""
MISSED_ACKS_BEFORE_GONE = 3

T = TypeVar("T")


class Outcome(enum.Enum):
    STOPPED = "stopped"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    AGENT_GONE = "agent gone"


class Refused(Exception):
    """The agent said no, or could not prove it knows the cookie: retrying will not help."""


class Backoff:
    """Exponential delays with jitter, so a fleet of plugins does not dial in lockstep."""

    def __init__(self, initial: float = 0.05, cap: float = 2.0) -> None:
        self._initial = initial
        self._cap = cap
        self._failures = 0

    def next(self) -> float:
        self._failures += 1
        return jittered(exponential_delay(self._failures, self._initial, self._cap), 0.2)

    def reset(self) -> None:
        self._failures = 0


async def serve(
    plugin: ResourcePlugin, settings: PluginSettings, stop: asyncio.Event, tracing: Tracing | None = None
) -> int:
    """Run the plugin until stopped or refused; the process exit code.

    With ``tracing``, each call is served inside a span continuing the agent's (its ``traceparent``).
    """
    await plugin.setup()
    try:
        return await _serve_until_done(plugin, settings, stop, tracing or Tracing.off())
    finally:
        await plugin.teardown()


async def _serve_until_done(
    plugin: ResourcePlugin, settings: PluginSettings, stop: asyncio.Event, tracing: Tracing
) -> int:
    identity = await _identity(settings, stop)
    if identity is None:
        return 0 if stop.is_set() else EX_CONFIG
    keeper = IdentityKeeper(identity)  # each dial presents the latest certificate the agent renewed
    backoff = Backoff()
    attempt = 0
    while not stop.is_set():
        attempt += 1
        outcome = await _connect_once(plugin, settings, keeper, stop, attempt, tracing)
        if outcome is not Outcome.UNREACHABLE:
            attempt = 0
        if outcome is Outcome.STOPPED:
            break
        if outcome is Outcome.REFUSED:
            return EX_CONFIG
        if outcome is Outcome.AGENT_GONE:
            if not settings.reconnect:
                log.info("agent went away; exiting")
                return 0
            backoff.reset()
        await _sleep_unless_stopped(backoff.next(), stop)
    log.info("plugin stopped")
    return 0


async def _identity(settings: PluginSettings, stop: asyncio.Event) -> Identity | None:
    """The plugin's credentials, joining with its token first if needed; None if refused or stopped."""
    backoff = Backoff()
    while not stop.is_set():
        try:  # not cut short by stop: a join the agent already redeemed would waste the one-time token
            return await obtain_identity(settings)
        except JoinDenied as denied:
            log.error("agent at %s refused the join token: %s", settings.agent_address, denied)
            return None
        except StreamClosed as error:
            log.warning("%s; retrying", error)
        await _sleep_unless_stopped(backoff.next(), stop)
    return None


async def _sleep_unless_stopped(delay: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)


def _worth_saying(attempt: int) -> bool:
    """Say so at the 3rd failed attempt and every 10th after: quiet while an agent starts, not forever."""
    return attempt == 3 or (attempt > 3 and attempt % 10 == 0)


async def _connect_once(
    plugin: ResourcePlugin,
    settings: PluginSettings,
    keeper: IdentityKeeper,
    stop: asyncio.Event,
    attempt: int = 1,
    tracing: Tracing | None = None,
) -> Outcome:
    identity = keeper.current
    connection = PluginConnection(settings.agent_address, identity.credentials)
    try:
        try:
            handshake = _handshake(connection.stream, plugin, settings, identity.cookie, keeper.renews)
            protocol = await unless_set(asyncio.wait_for(handshake, HANDSHAKE_TIMEOUT), stop)
        except Interrupted:
            return Outcome.STOPPED
        except (StreamClosed, TimeoutError) as error:
            _log_unreachable(settings.agent_address, identity, attempt, error)
            return Outcome.UNREACHABLE
        except (Refused, ProtocolError) as error:
            log.error("agent at %s refused this plugin: %s", settings.agent_address, error)
            return Outcome.REFUSED
        log.info(
            "announced to agent at %s as node=%s namespace=%s protocol=v%d",
            settings.agent_address,
            settings.node,
            plugin.namespace,
            protocol,
        )
        session = _Session(plugin, connection.stream, settings, keeper, tracing)
        return Outcome.STOPPED if await session.run(stop) else Outcome.AGENT_GONE
    finally:
        await connection.close()


def _log_unreachable(address: str, identity: Identity, attempt: int, error: BaseException) -> None:
    log.log(
        logging.WARNING if _worth_saying(attempt) else logging.DEBUG,
        "cannot reach the agent at %s (attempt %d): %s%s",
        address,
        attempt,
        describe_error(error),
        "; if the agent runs with TLS, check the plugin's certificate or join token"
        if identity.credentials is None
        else "; check that the agent's CA issued this plugin's certificate",
    )


async def _handshake(
    stream: PluginSideStream, plugin: ResourcePlugin, settings: PluginSettings, cookie: str, renews: bool
) -> int:
    challenge = await stream.receive()
    if not isinstance(challenge, Challenge):
        raise StreamClosed("agent closed the stream before its challenge")
    plugin_nonce = auth.new_nonce()
    await stream.send(_announcement(plugin, settings, challenge, plugin_nonce, cookie, renews))
    ack = await stream.receive()
    if not isinstance(ack, AnnouncementAck):
        raise StreamClosed("agent closed the stream before acknowledging the announcement")
    if not ack.accepted:
        raise Refused(ack.reason)
    expected = auth.agent_proof(cookie, challenge.agent_nonce, plugin_nonce)
    if not auth.verify(expected, ack.proof):
        raise Refused("the agent could not prove it knows the network cookie")
    if ack.protocol_version not in PROTOCOL_VERSIONS:
        raise Refused(
            f"the agent chose protocol version {ack.protocol_version}; "
            f"this plugin speaks {list(PROTOCOL_VERSIONS)}"
        )
    return ack.protocol_version


def _announcement(
    plugin: ResourcePlugin,
    settings: PluginSettings,
    challenge: Challenge,
    plugin_nonce: bytes,
    cookie: str,
    renews: bool = False,
) -> Announcement:
    return Announcement(
        namespace=plugin.namespace,
        plugin_name=plugin.name,
        plugin_version=plugin.version,
        protocol_versions=PROTOCOL_VERSIONS,
        node=settings.node,
        rate_limit=plugin.rate_limit,
        max_concurrency=plugin.max_concurrency,
        resource_types=tuple(plugin.schemas()),
        plugin_nonce=plugin_nonce,
        proof=auth.plugin_proof(cookie, challenge.agent_nonce, plugin_nonce),
        pid=os.getpid(),
        heartbeat_interval=settings.heartbeat_interval,
        renews_certificate=renews,
    )


class _Session:
    """One accepted stream: calls are served concurrently while heartbeats keep the link honest."""

    def __init__(
        self,
        plugin: ResourcePlugin,
        stream: PluginSideStream,
        settings: PluginSettings,
        keeper: IdentityKeeper | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._keeper = keeper
        """Keeps the certificates the agent renews, for the next dial."""
        self._plugin = plugin
        self._tracing = tracing or Tracing.off()
        self._stream = stream
        self._interval = settings.heartbeat_interval
        self._limit = asyncio.Semaphore(plugin.max_concurrency) if plugin.max_concurrency else None
        self._in_flight = 0
        self._last_ack = time.monotonic()
        self._calls: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> bool:
        """Serve until the stream ends (False) or ``stop`` is set (True); calls in flight are cancelled.

        One TaskGroup holds the loops and the calls, so a task that dies of a bug ends the session
        with its exception instead of leaving the others running.
        """
        async with asyncio.TaskGroup() as tasks:
            loops = [
                tasks.create_task(self._receive(tasks), name="receive"),
                tasks.create_task(self._heartbeat(), name="heartbeat"),
                tasks.create_task(stop.wait(), name="stop"),
            ]
            await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
            for task in [*loops, *self._calls]:
                task.cancel()
        return stop.is_set()

    async def _receive(self, calls: asyncio.TaskGroup) -> None:
        try:
            while (frame := await self._stream.receive()) is not None:
                if isinstance(frame, OperationCall):
                    task = calls.create_task(self._serve(frame))
                    self._calls.add(task)
                    task.add_done_callback(self._calls.discard)
                elif isinstance(frame, HeartbeatAck):
                    self._last_ack = time.monotonic()
                elif isinstance(frame, CertificateRenewal) and self._keeper is not None:
                    await asyncio.to_thread(self._keeper.renew, frame.certificate)
        except (StreamClosed, ProtocolError) as error:
            log.warning("stream from agent ended: %s", error)

    async def _heartbeat(self) -> None:
        sequence = 0
        patience = self._interval * MISSED_ACKS_BEFORE_GONE + 1.0
        try:
            while time.monotonic() - self._last_ack < patience:
                sequence += 1
                await self._stream.send(Heartbeat(sequence, self._in_flight, time.time()))
                await asyncio.sleep(self._interval)
            log.warning("agent stopped answering heartbeats for %.1fs", patience)
        except StreamClosed as error:
            log.warning("%s", error)

    async def _serve(self, call: OperationCall) -> None:
        self._in_flight += 1
        try:
            if not self._tracing.enabled:
                result = await self._answer(call.request)
            else:
                with self._tracing.continued(*_span_of(call)):
                    result = await self._answer(call.request)
            await self._reply(call, result)
        except StreamClosed:
            log.warning("reply to call %d lost: the stream closed", call.call_id)
        finally:
            self._in_flight -= 1

    async def _answer(self, request: OperationRequest) -> OperationResult:
        if self._limit is None:
            return await _safely(self._plugin, request)
        async with self._limit:
            return await _safely(self._plugin, request)

    async def _reply(self, call: OperationCall, result: OperationResult) -> None:
        """Send the result; one that cannot be encoded becomes a PLUGIN_ERROR, not a lost call."""
        try:
            await self._stream.send(OperationReply(call.call_id, result))
        except StreamClosed:
            raise
        except Exception as error:  # whatever the plugin returned, encoding it must not end the process
            log.error("result of call %d cannot cross the wire: %r", call.call_id, error)
            failure = ProgressResult.failure(
                operation_of(call.request), ErrorCode.PLUGIN_ERROR, f"result cannot be encoded: {error}"
            )
            await self._stream.send(OperationReply(call.call_id, failure))


def _span_of(call: OperationCall) -> tuple[TraceContext | None, str, dict[str, str]]:
    """The agent's trace context of the call, and the name and attributes of the plugin's span."""
    context = TraceContext(call.traceparent, call.tracestate) if call.traceparent else None
    request = call.request
    operation = "status" if isinstance(request, StatusRequest) else operation_of(request).name.lower()
    name = f"plugin serves {operation} {request.resource_type}"
    return context, name, {"formae.operation": operation, "formae.resource_type": request.resource_type}


async def _safely(plugin: ResourcePlugin, request: OperationRequest) -> OperationResult:
    """The plugin's answer; an exception becomes a PLUGIN_ERROR failure instead of a lost call."""
    try:
        return await dispatch(plugin, request)
    except Exception as error:  # the plugin's bug must not take the process down
        log.error("plugin raised on %s:\n%s", type(request).__name__, traceback.format_exc())
        return ProgressResult.failure(
            operation_of(request), ErrorCode.PLUGIN_ERROR, f"{type(error).__name__}: {error}"
        )
