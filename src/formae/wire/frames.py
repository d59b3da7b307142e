"""Every message that crosses the plugin stream, as immutable named tuples.

A PluginFrame goes from plugin to agent; an AgentFrame from agent to plugin. The order is fixed
by docs/protocol.md: Challenge, Announcement, AnnouncementAck, then anything else.

NamedTuples rather than dataclasses: they are internal to the wire layer, and building seven
dataclasses costs a plugin ~5 ms of its start, which is measured (spawn -> registered).
"""

from __future__ import annotations

from typing import NamedTuple

from formae.wire.types import OperationRequest, OperationResult, ResourceSchema


class Challenge(NamedTuple):
    agent_nonce: bytes
    protocol_versions: tuple[int, ...]
    agent_node: str


class Announcement(NamedTuple):
    namespace: str
    plugin_name: str
    plugin_version: str
    protocol_versions: tuple[int, ...]
    node: str
    rate_limit: float
    max_concurrency: int
    resource_types: tuple[ResourceSchema, ...]
    plugin_nonce: bytes
    proof: bytes
    pid: int
    heartbeat_interval: float
    renews_certificate: bool = False
    """The plugin keeps the ``CertificateRenewal`` frames it is sent; only such a plugin is sent any."""


class AnnouncementAck(NamedTuple):
    accepted: bool
    reason: str = ""
    protocol_version: int = 0
    proof: bytes = b""


class Heartbeat(NamedTuple):
    sequence: int
    in_flight: int
    wall_time: float = 0.0
    """The plugin's clock (Unix seconds) when sent, so the agent can see clock skew; 0 if not said."""


class HeartbeatAck(NamedTuple):
    sequence: int


class CertificateRenewal(NamedTuple):
    """A fresh certificate (PEM) for the plugin's own key, same subject and namespaces, for its next dial."""

    certificate: bytes


class OperationCall(NamedTuple):
    call_id: int
    request: OperationRequest
    deadline: float = 0.0
    traceparent: str = ""
    """The W3C trace context of the agent's span for this call; empty when it is not traced."""
    tracestate: str = ""


class OperationReply(NamedTuple):
    call_id: int
    result: OperationResult


class MalformedReply(NamedTuple):
    """What the agent's decoder makes of a reply it cannot read: never sent, only received.

    Only the link knows which operation the call was, so the decoder hands it the call id and the
    reason, and the link fails that one call as the operation it sent.
    """

    call_id: int
    reason: str


PluginFrame = Announcement | Heartbeat | OperationReply | MalformedReply
AgentFrame = Challenge | AnnouncementAck | HeartbeatAck | OperationCall | CertificateRenewal
