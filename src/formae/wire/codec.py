"""Frames to protobuf and back: the one place that knows both vocabularies.

Properties, configs and patches travel as UTF-8 JSON bytes rather than ``google.protobuf.Struct``
so that integers stay integers and a plugin in any language can use its own JSON library.
"""

from __future__ import annotations

import json
from typing import Any, assert_never

from formae._proto.formae.plugin.v1 import plugin_pb2 as pb
from formae.model import Operation
from formae.wire.frames import (
    AgentFrame,
    Announcement,
    AnnouncementAck,
    CertificateRenewal,
    Challenge,
    Heartbeat,
    HeartbeatAck,
    MalformedReply,
    OperationCall,
    OperationReply,
    PluginFrame,
)
from formae.wire.types import (
    CreateRequest,
    DeleteRequest,
    ErrorCode,
    JsonObject,
    ListedResource,
    ListRequest,
    ListResult,
    OperationRequest,
    OperationResult,
    OperationStatus,
    ProgressResult,
    ReadRequest,
    ResourceSchema,
    StatusRequest,
    TargetInfo,
    UpdateRequest,
)


class ProtocolError(Exception):
    """The peer sent something this version of the protocol cannot understand."""


_OPERATION_TO_PB: dict[Operation, pb.Operation.ValueType] = {
    Operation.CREATE: pb.OPERATION_CREATE,
    Operation.READ: pb.OPERATION_READ,
    Operation.UPDATE: pb.OPERATION_UPDATE,
    Operation.DELETE: pb.OPERATION_DELETE,
    Operation.LIST: pb.OPERATION_LIST,
}
"""The model's operations by their protocol numbers (``plugin.proto``'s ``Operation``)."""
_OPERATION_FROM_PB = {number: operation for operation, number in _OPERATION_TO_PB.items()}


def _operation_from_pb(number: int) -> Operation:
    try:
        return _OPERATION_FROM_PB[pb.Operation.ValueType(number)]
    except KeyError:
        raise ProtocolError(f"unknown operation {number}") from None


def _dump(value: Any) -> bytes:
    # NaN and Infinity are not JSON: a plugin in another language could not read them.
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode() if value is not None else b""


def _load(data: bytes, what: str) -> Any:
    if not data:
        return None
    try:
        return json.loads(data, parse_constant=_not_json)
    except ValueError as error:  # UnicodeDecodeError included
        raise ProtocolError(f"{what} is not valid JSON: {error}") from None
    except RecursionError:  # a few kilobytes of '[' are enough; the peer must not take us down with them
        raise ProtocolError(f"{what} is nested too deeply") from None


def _not_json(constant: str) -> Any:
    """NaN and Infinity: Python's json reads them, no other JSON library (or our datastore) does."""
    raise ValueError(f"{constant} is not a JSON value")


def _load_object(data: bytes, what: str) -> JsonObject:
    value = _load(data, what)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------- schemas and targets


def _schema_to_pb(schema: ResourceSchema) -> pb.ResourceTypeSchema:
    return pb.ResourceTypeSchema(
        type=schema.type,
        identifier=schema.identifier,
        create_only=list(schema.create_only),
        read_only=list(schema.read_only),
        json_schema=_dump(schema.json_schema) if schema.json_schema else b"",
    )


def _schema_from_pb(message: pb.ResourceTypeSchema) -> ResourceSchema:
    return ResourceSchema(
        type=message.type,
        identifier=message.identifier,
        create_only=tuple(message.create_only),
        read_only=tuple(message.read_only),
        json_schema=_load_object(message.json_schema, f"schema of {message.type}"),
    )


def _target_to_pb(target: TargetInfo) -> pb.TargetRef:
    return pb.TargetRef(label=target.label, namespace=target.namespace, config=_dump(target.config))


def _target_from_pb(message: pb.TargetRef) -> TargetInfo:
    config = _load_object(message.config, f"config of target {message.label!r}")
    return TargetInfo(label=message.label, namespace=message.namespace, config=config)


# ---------------------------------------------------------------- operation requests


def _request_to_pb(call: pb.OperationCall, request: OperationRequest) -> None:
    match request:
        case CreateRequest():
            call.create.CopyFrom(
                pb.CreateRequest(
                    resource_type=request.resource_type,
                    label=request.label,
                    properties=_dump(request.properties),
                    target=_target_to_pb(request.target),
                    idempotency_key=request.idempotency_key,
                )
            )
        case ReadRequest():
            call.read.CopyFrom(
                pb.ReadRequest(
                    resource_type=request.resource_type,
                    native_id=request.native_id,
                    target=_target_to_pb(request.target),
                )
            )
        case UpdateRequest():
            call.update.CopyFrom(
                pb.UpdateRequest(
                    resource_type=request.resource_type,
                    native_id=request.native_id,
                    prior_properties=_dump(request.prior_properties),
                    desired_properties=_dump(request.desired_properties),
                    patch=_dump(request.patch),
                    target=_target_to_pb(request.target),
                )
            )
        case DeleteRequest():
            call.delete.CopyFrom(
                pb.DeleteRequest(
                    resource_type=request.resource_type,
                    native_id=request.native_id,
                    target=_target_to_pb(request.target),
                )
            )
        case StatusRequest():
            call.status.CopyFrom(
                pb.StatusRequest(
                    request_id=request.request_id,
                    resource_type=request.resource_type,
                    target=_target_to_pb(request.target),
                    operation=_OPERATION_TO_PB[request.operation]
                    if request.operation
                    else pb.OPERATION_UNSPECIFIED,
                )
            )
        case ListRequest():
            call.list.CopyFrom(
                pb.ListRequest(
                    resource_type=request.resource_type,
                    target=_target_to_pb(request.target),
                    page_token=request.page_token,
                    page_size=request.page_size,
                )
            )
        case _:
            assert_never(request)


def _known_operation(value: int) -> Operation | None:
    """A status poll's original operation; None when unset (an older agent) or newer than this SDK."""
    return _OPERATION_FROM_PB.get(pb.Operation.ValueType(value))


def _request_from_pb(call: pb.OperationCall) -> OperationRequest:
    kind = call.WhichOneof("request")
    if kind == "create":
        c = call.create
        return CreateRequest(
            resource_type=c.resource_type,
            label=c.label,
            properties=_load_object(c.properties, "properties"),
            target=_target_from_pb(c.target),
            idempotency_key=c.idempotency_key,
        )
    if kind == "read":
        r = call.read
        return ReadRequest(r.resource_type, r.native_id, _target_from_pb(r.target))
    if kind == "update":
        u = call.update
        patch = _load(u.patch, "patch") or []
        if not isinstance(patch, list):
            raise ProtocolError("patch must be a JSON array")
        return UpdateRequest(
            resource_type=u.resource_type,
            native_id=u.native_id,
            prior_properties=_load_object(u.prior_properties, "prior properties"),
            desired_properties=_load_object(u.desired_properties, "desired properties"),
            patch=patch,
            target=_target_from_pb(u.target),
        )
    if kind == "delete":
        d = call.delete
        return DeleteRequest(d.resource_type, d.native_id, _target_from_pb(d.target))
    if kind == "status":
        s = call.status
        return StatusRequest(
            s.request_id, s.resource_type, _target_from_pb(s.target), _known_operation(s.operation)
        )
    if kind == "list":
        li = call.list
        return ListRequest(li.resource_type, _target_from_pb(li.target), li.page_token, li.page_size)
    raise ProtocolError(f"operation call {call.call_id} carries no request")


# ---------------------------------------------------------------- results


def _progress_to_pb(result: ProgressResult) -> pb.ProgressResult:
    return pb.ProgressResult(
        operation=_OPERATION_TO_PB[result.operation],
        status=pb.OperationStatus.ValueType(result.status),
        request_id=result.request_id,
        native_id=result.native_id,
        resource_type=result.resource_type,
        properties=_dump(result.properties),
        error_code=pb.ErrorCode.ValueType(result.error_code or 0),
        status_message=result.message,
        retry_after_ms=round(result.retry_after * 1000),
    )


def _enum(enum: type[Any], value: int, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise ProtocolError(f"unknown {what} {value}") from None


def _progress_from_pb(message: pb.ProgressResult) -> ProgressResult:
    properties = _load(message.properties, "result properties")
    if properties is not None and not isinstance(properties, dict):
        raise ProtocolError("result properties must be a JSON object")
    return ProgressResult(
        operation=_operation_from_pb(message.operation),
        status=_enum(OperationStatus, message.status, "operation status"),
        request_id=message.request_id,
        native_id=message.native_id,
        resource_type=message.resource_type,
        properties=properties,
        error_code=_enum(ErrorCode, message.error_code, "error code") if message.error_code else None,
        message=message.status_message,
        retry_after=message.retry_after_ms / 1000,
    )


def _list_to_pb(result: ListResult) -> pb.ListResult:
    resources = [
        pb.ListedResource(native_id=r.native_id, properties=_dump(r.properties)) for r in result.resources
    ]
    return pb.ListResult(resources=resources, next_page_token=result.next_page_token)


def _list_from_pb(message: pb.ListResult) -> ListResult:
    resources = [
        ListedResource(r.native_id, _load_object(r.properties, f"properties of {r.native_id}"))
        for r in message.resources
    ]
    return ListResult(resources=resources, next_page_token=message.next_page_token)


# ---------------------------------------------------------------- frames


def _announcement_to_pb(a: Announcement) -> pb.Announcement:
    return pb.Announcement(
        namespace=a.namespace,
        plugin_name=a.plugin_name,
        plugin_version=a.plugin_version,
        protocol_versions=list(a.protocol_versions),
        node=a.node,
        rate_limit=a.rate_limit,
        max_concurrency=a.max_concurrency,
        resource_types=[_schema_to_pb(s) for s in a.resource_types],
        plugin_nonce=a.plugin_nonce,
        proof=a.proof,
        pid=a.pid,
        heartbeat_interval_ms=round(a.heartbeat_interval * 1000),
        renews_certificate=a.renews_certificate,
    )


def _announcement_from_pb(m: pb.Announcement) -> Announcement:
    return Announcement(
        namespace=m.namespace,
        plugin_name=m.plugin_name,
        plugin_version=m.plugin_version,
        protocol_versions=tuple(m.protocol_versions),
        node=m.node,
        rate_limit=m.rate_limit,
        max_concurrency=m.max_concurrency,
        resource_types=tuple(_schema_from_pb(s) for s in m.resource_types),
        plugin_nonce=m.plugin_nonce,
        proof=m.proof,
        pid=m.pid,
        heartbeat_interval=m.heartbeat_interval_ms / 1000,
        renews_certificate=m.renews_certificate,
    )


def encode_plugin_frame(frame: PluginFrame) -> pb.PluginFrame:
    match frame:
        case OperationReply(call_id=call_id, result=ProgressResult() as result):
            return pb.PluginFrame(reply=pb.OperationReply(call_id=call_id, progress=_progress_to_pb(result)))
        case OperationReply(call_id=call_id, result=ListResult() as result):
            return pb.PluginFrame(reply=pb.OperationReply(call_id=call_id, list=_list_to_pb(result)))
        case Heartbeat():
            beat = pb.Heartbeat(
                sequence=frame.sequence, in_flight=frame.in_flight, wall_time_ms=round(frame.wall_time * 1000)
            )
            return pb.PluginFrame(heartbeat=beat)
        case Announcement():
            return pb.PluginFrame(announcement=_announcement_to_pb(frame))
        case MalformedReply():
            raise TypeError("a MalformedReply is what the agent decodes from a bad reply; it is never sent")
        case OperationReply():
            raise TypeError(f"not an operation result: {frame.result!r}")
        case _:
            assert_never(frame)


def decode_plugin_frame(message: pb.PluginFrame) -> PluginFrame:
    kind = message.WhichOneof("body")
    if kind == "reply":
        return _decode_reply(message.reply)
    if kind == "heartbeat":
        beat = message.heartbeat
        return Heartbeat(beat.sequence, beat.in_flight, beat.wall_time_ms / 1000)
    if kind == "announcement":
        return _announcement_from_pb(message.announcement)
    raise ProtocolError("empty plugin frame")


def _decode_reply(reply: pb.OperationReply) -> OperationReply | MalformedReply:
    """The reply; a malformed one fails its own call (the link knows which operation), not the stream."""
    try:
        return OperationReply(reply.call_id, _decode_result(reply))
    except ProtocolError as error:
        return MalformedReply(reply.call_id, str(error))


def _decode_result(reply: pb.OperationReply) -> OperationResult:
    kind = reply.WhichOneof("result")
    if kind == "progress":
        return _progress_from_pb(reply.progress)
    if kind == "list":
        return _list_from_pb(reply.list)
    raise ProtocolError(f"reply to call {reply.call_id} carries no result")


def encode_agent_frame(frame: AgentFrame) -> pb.AgentFrame:
    match frame:
        case OperationCall():
            call = pb.OperationCall(
                call_id=frame.call_id,
                deadline_ms=round(frame.deadline * 1000),
                traceparent=frame.traceparent,
                tracestate=frame.tracestate,
            )
            _request_to_pb(call, frame.request)
            return pb.AgentFrame(call=call)
        case HeartbeatAck():
            return pb.AgentFrame(heartbeat_ack=pb.HeartbeatAck(sequence=frame.sequence))
        case Challenge():
            challenge = pb.Challenge(
                agent_nonce=frame.agent_nonce,
                protocol_versions=list(frame.protocol_versions),
                agent_node=frame.agent_node,
            )
            return pb.AgentFrame(challenge=challenge)
        case AnnouncementAck():
            ack = pb.AnnouncementAck(
                accepted=frame.accepted,
                reason=frame.reason,
                protocol_version=frame.protocol_version,
                proof=frame.proof,
            )
            return pb.AgentFrame(ack=ack)
        case CertificateRenewal():
            return pb.AgentFrame(certificate_renewal=pb.CertificateRenewal(certificate=frame.certificate))
        case _:
            assert_never(frame)


def decode_agent_frame(message: pb.AgentFrame) -> AgentFrame:
    kind = message.WhichOneof("body")
    if kind == "call":
        call = message.call
        return OperationCall(
            call.call_id, _request_from_pb(call), call.deadline_ms / 1000, call.traceparent, call.tracestate
        )
    if kind == "heartbeat_ack":
        return HeartbeatAck(message.heartbeat_ack.sequence)
    if kind == "challenge":
        c = message.challenge
        return Challenge(c.agent_nonce, tuple(c.protocol_versions), c.agent_node)
    if kind == "ack":
        a = message.ack
        return AnnouncementAck(a.accepted, a.reason, a.protocol_version, a.proof)
    if kind == "certificate_renewal":
        return CertificateRenewal(message.certificate_renewal.certificate)
    raise ProtocolError("empty agent frame")
