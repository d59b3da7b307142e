"""Every message that crosses the plugin stream, as frozen dataclasses.

A PluginFrame goes from plugin to agent; an AgentFrame from agent to plugin. The order is fixed
by docs/protocol.md: Challenge, Announcement, AnnouncementAck, then anything else.
"""

from __future__ import annotations

from dataclasses import dataclass

from formae.wire.types import OperationRequest, OperationResult, ResourceSchema


@dataclass(frozen=True, slots=True)
class Challenge:
    agent_nonce: bytes
    protocol_versions: tuple[int, ...]
    agent_node: str


@dataclass(frozen=True, slots=True)
class Announcement:
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


@dataclass(frozen=True, slots=True)
class AnnouncementAck:
    accepted: bool
    reason: str = ""
    protocol_version: int = 0
    proof: bytes = b""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    sequence: int
    in_flight: int


@dataclass(frozen=True, slots=True)
class HeartbeatAck:
    sequence: int


@dataclass(frozen=True, slots=True)
class OperationCall:
    call_id: int
    request: OperationRequest
    deadline: float = 0.0


@dataclass(frozen=True, slots=True)
class OperationReply:
    call_id: int
    result: OperationResult


PluginFrame = Announcement | Heartbeat | OperationReply
AgentFrame = Challenge | AnnouncementAck | HeartbeatAck | OperationCall
