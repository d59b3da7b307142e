"""PluginHub: the agent's side of the plugin stream, from first frame to last.

For every stream a plugin opens it challenges, checks the proof of the cookie, negotiates the
protocol version, checks what the plugin claims, registers it, then pumps its frames (replies to
calls, heartbeats) until the stream ends or the registry gives up on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from formae.agent.node_claims import NodeClaimRefused, fingerprint
from formae.agent.plugin_link import CallGate, PluginLink
from formae.agent.registry import Location, PluginRegistry, RegisteredPlugin
from formae.agent.renewal import CertificateRenewer
from formae.race import Interrupted, unless_set
from formae.wire import PROTOCOL_VERSIONS, auth
from formae.wire.certificates import allows, namespaces_of
from formae.wire.codec import ProtocolError
from formae.wire.frames import (
    Announcement,
    AnnouncementAck,
    Challenge,
    Heartbeat,
    HeartbeatAck,
    MalformedReply,
    OperationReply,
)
from formae.wire.transport import AgentSideStream, StreamClosed, describe_error

log = logging.getLogger("formae.agent.hub")

Locator = Callable[[str, int], Location]
"""Says whether the plugin announcing ``(node, pid)`` is one this agent spawned."""


@dataclass(frozen=True)
class Refusal:
    told_plugin: str
    logged: str


class PluginHub:
    def __init__(
        self,
        registry: PluginRegistry,
        cookie: str,
        agent_node: str,
        locate: Locator,
        *,
        handshake_timeout: float = 10.0,
        require_certificate: bool = False,
        gate: CallGate | None = None,
        renewer: CertificateRenewer | None = None,
    ) -> None:
        self._renewer = renewer
        """With TLS on: renews the certificates of plugins that keep renewals, over their links."""
        self._gate = gate
        """Given to every link: secrets are revealed to plugins and concealed from their answers there."""
        self._require_certificate = require_certificate
        """With TLS on, every plugin must hold a certificate of this agent's CA naming its namespace."""
        self._registry = registry
        self._cookie = cookie
        self._agent_node = agent_node
        self._locate = locate
        self._handshake_timeout = handshake_timeout

    async def handle(self, stream: AgentSideStream) -> None:
        """Serve one plugin stream to its end; never raises, whatever the plugin sends."""
        try:
            accepted = await asyncio.wait_for(self._accept(stream), self._handshake_timeout)
        except (StreamClosed, ProtocolError, TimeoutError) as error:
            log.warning("Plugin handshake failed peer=%s: %s", stream.peer, describe_error(error))
            return
        if accepted is None:
            return
        link, announcement = accepted
        reason = "the stream was cancelled (the plugin hung up, or the agent is stopping)"
        try:
            async with asyncio.TaskGroup() as tasks:
                renewing = self._renew(tasks, stream, announcement)
                reason = await self._pump(stream, link)
                if renewing is not None:
                    renewing.cancel()
        finally:
            self._registry.disconnected(link, reason)

    def _renew(
        self, tasks: asyncio.TaskGroup, stream: AgentSideStream, announcement: Announcement
    ) -> asyncio.Task[None] | None:
        """Renew the certificate of a plugin that keeps renewals, for as long as its link lasts."""
        certificate = stream.peer_certificate
        if self._renewer is None or certificate is None or not announcement.renews_certificate:
            return None
        work = self._renewer.serve(stream.send, certificate, announcement.node)
        return tasks.create_task(work, name=f"renew {announcement.node}")

    async def _accept(self, stream: AgentSideStream) -> tuple[PluginLink, Announcement] | None:
        nonce = auth.new_nonce()
        await stream.send(Challenge(nonce, PROTOCOL_VERSIONS, self._agent_node))
        announcement = await stream.receive()
        if not isinstance(announcement, Announcement):
            raise ProtocolError(f"expected an announcement, got {type(announcement).__name__}")
        refusal = self._check(announcement, nonce) or self._check_certificate(announcement, stream)
        if refusal is not None:
            log.warning("Plugin refused node=%s peer=%s: %s", announcement.node, stream.peer, refusal.logged)
            await stream.send(AnnouncementAck(accepted=False, reason=refusal.told_plugin))
            return None
        version = auth.negotiate(PROTOCOL_VERSIONS, announcement.protocol_versions) or 0
        link = PluginLink(stream, announcement.namespace, announcement.node, self._gate)
        registration = self._registration(announcement, link, version, stream.peer_certificate)
        try:
            self._registry.check_claim(registration)
        except NodeClaimRefused as refused:
            log.warning("Plugin refused node=%s peer=%s: %s", announcement.node, stream.peer, refused)
            await stream.send(AnnouncementAck(accepted=False, reason=str(refused)))
            return None
        proof = auth.agent_proof(self._cookie, nonce, announcement.plugin_nonce)
        await stream.send(AnnouncementAck(accepted=True, protocol_version=version, proof=proof))
        try:
            self._registry.register(registration)  # checks again: another claim may have won meanwhile
        except NodeClaimRefused as refused:
            log.warning("Plugin refused node=%s peer=%s: %s", announcement.node, stream.peer, refused)
            link.close(str(refused))
            return None
        return link, announcement

    def _check(self, announcement: Announcement, nonce: bytes) -> Refusal | None:
        expected = auth.plugin_proof(self._cookie, nonce, announcement.plugin_nonce)
        if not auth.verify(expected, announcement.proof):
            return Refusal("authentication failed: wrong network cookie", "wrong network cookie")
        if auth.negotiate(PROTOCOL_VERSIONS, announcement.protocol_versions) is None:
            message = (
                f"no common protocol version: agent speaks {list(PROTOCOL_VERSIONS)}, "
                f"plugin speaks {list(announcement.protocol_versions)}"
            )
            return Refusal(message, message)
        return _check_claims(announcement)

    def _check_certificate(self, announcement: Announcement, stream: AgentSideStream) -> Refusal | None:
        if not self._require_certificate:
            return None
        if stream.peer_certificate is None:
            message = "a client certificate is required: join with a token (formae plugin token create)"
            return Refusal(message, "no client certificate")
        allowed = namespaces_of(stream.peer_certificate)
        if allows(allowed, announcement.namespace):
            return None
        message = (
            f"namespace {announcement.namespace} is not allowed by this plugin's certificate "
            f"(allows: {', '.join(sorted(allowed)) or 'none'})"
        )
        return Refusal(message, message)

    def _registration(
        self, a: Announcement, link: PluginLink, version: int, certificate: bytes | None
    ) -> RegisteredPlugin:
        return RegisteredPlugin(
            namespace=a.namespace,
            name=a.plugin_name,
            version=a.plugin_version,
            node=a.node,
            pid=a.pid,
            location=self._locate(a.node, a.pid),
            protocol_version=version,
            rate_limit=a.rate_limit,
            max_concurrency=a.max_concurrency,
            schemas=a.resource_types,
            link=link,
            heartbeat_interval=a.heartbeat_interval,
            certificate=fingerprint(certificate),
        )

    async def _pump(self, stream: AgentSideStream, link: PluginLink) -> str:
        """Route the plugin's frames until the stream ends or the registry closes the link; why it ended."""
        try:
            return await unless_set(self._receive_all(stream, link), link.closed)
        except Interrupted:
            return link.close_reason

    async def _receive_all(self, stream: AgentSideStream, link: PluginLink) -> str:
        try:
            while (frame := await stream.receive()) is not None:
                await self._route(stream, link, frame)
        except (StreamClosed, ProtocolError) as error:
            return str(error)
        return "stream closed by the plugin"

    async def _route(self, stream: AgentSideStream, link: PluginLink, frame: object) -> None:
        if isinstance(frame, OperationReply | MalformedReply):
            if not link.deliver(frame):
                log.debug("late reply to call %d from %s dropped", frame.call_id, link.node)
        elif isinstance(frame, Heartbeat):
            self._registry.heartbeat(link, frame.wall_time)
            await stream.send(HeartbeatAck(frame.sequence))
        else:
            raise ProtocolError(f"unexpected {type(frame).__name__} after the handshake")


def _check_claims(announcement: Announcement) -> Refusal | None:
    if not announcement.namespace or not announcement.node:
        return Refusal(
            "announcement must name a namespace and a node", "announcement without namespace or node"
        )
    prefix = f"{announcement.namespace}::"
    foreign = [s.type for s in announcement.resource_types if not s.type.startswith(prefix)]
    if foreign:
        message = f"types outside namespace {announcement.namespace}: {', '.join(foreign)}"
        return Refusal(message, message)
    return None
