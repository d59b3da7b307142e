"""The wire codec: every frame survives protobuf bytes unchanged, and bad input is a ProtocolError."""

from __future__ import annotations

import importlib
import sys
from enum import IntEnum
from typing import Any

import pytest

from formae._proto.formae.plugin.v1 import plugin_pb2 as pb
from formae.model import Operation
from formae.wire.codec import (
    ProtocolError,
    decode_agent_frame,
    decode_plugin_frame,
    encode_agent_frame,
    encode_plugin_frame,
)
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
    ListedResource,
    ListRequest,
    ListResult,
    OperationRequest,
    OperationStatus,
    ProgressResult,
    ReadRequest,
    ResourceSchema,
    StatusRequest,
    TargetInfo,
    UpdateRequest,
)

pytestmark = pytest.mark.timeout(10)

TARGET = TargetInfo("prod", "FakeAWS", {"Region": "eu-west-1", "Retries": 3, "Tags": {"env": "prod"}})
NESTED: dict[str, Any] = {
    "Name": "grüße 東京 🚀",
    "Count": 2**53 + 1,
    "Negative": -7,
    "Ratio": 0.25,
    "Enabled": False,
    "Nothing": None,
    "Tags": [{"Key": "a", "Value": "b"}, {"Key": "ü", "Value": ""}],
    "Deep": {"L1": {"L2": {"L3": [1, [2, [3]]]}}},
}


def agent_round_trip(frame: AgentFrame) -> AgentFrame:
    wire = encode_agent_frame(frame).SerializeToString()
    return decode_agent_frame(pb.AgentFrame.FromString(wire))


def plugin_round_trip(frame: PluginFrame) -> PluginFrame:
    wire = encode_plugin_frame(frame).SerializeToString()
    return decode_plugin_frame(pb.PluginFrame.FromString(wire))


REQUESTS: list[OperationRequest] = [
    CreateRequest("FakeAWS::S3::Bucket", "logs", NESTED, TARGET, idempotency_key="cmd-1/upd-2"),
    CreateRequest("FakeAWS::S3::Bucket", "empty", {}, TargetInfo("t", "FakeAWS")),
    ReadRequest("FakeAWS::EC2::VPC", "vpc-123", TARGET),
    UpdateRequest(
        "FakeAWS::EC2::VPC",
        "vpc-123",
        prior_properties={"CidrBlock": "10.0.0.0/16", "Tags": []},
        desired_properties=NESTED,
        patch=[{"op": "replace", "path": "/Tags", "value": [{"Key": "a"}]}, {"op": "remove", "path": "/X"}],
        target=TARGET,
    ),
    UpdateRequest("FakeAWS::EC2::VPC", "vpc-1", {}, {}, [], TARGET),
    DeleteRequest("FakeAWS::EC2::Subnet", "subnet-9", TARGET),
    StatusRequest("req-abc", "FakeAWS::EC2::VPC", TARGET),
    StatusRequest("req-abc", "FakeAWS::EC2::VPC", TARGET, Operation.DELETE),
    ListRequest("FakeAWS::S3::Bucket", TARGET, page_token="next-7", page_size=50),
    ListRequest("FakeAWS::S3::Bucket", TARGET),
]


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_every_request_type_round_trips(request_: OperationRequest) -> None:
    call = OperationCall(call_id=2**40, request=request_, deadline=12.5)
    assert agent_round_trip(call) == call


def test_unicode_and_big_integers_survive_exactly() -> None:
    call = agent_round_trip(OperationCall(1, REQUESTS[0]))
    assert isinstance(call, OperationCall)
    assert isinstance(call.request, CreateRequest)
    properties = call.request.properties
    assert properties["Name"] == "grüße 東京 🚀"
    assert properties["Count"] == 9007199254740993
    assert type(properties["Count"]) is int  # not a float, as google.protobuf.Struct would give
    assert type(properties["Ratio"]) is float


PROGRESS: list[ProgressResult] = [
    ProgressResult.success(Operation.CREATE, "vpc-1", NESTED, resource_type="FakeAWS::EC2::VPC"),
    ProgressResult.success(Operation.DELETE, "vpc-1"),
    ProgressResult.success(Operation.READ, "b", {}),
    ProgressResult.in_progress(Operation.UPDATE, "req-7", native_id="vpc-1", retry_after=0.25),
    *[ProgressResult.failure(Operation.CREATE, code, f"failed: {code.wire_name} ✗") for code in ErrorCode],
    ProgressResult.failure(Operation.LIST, ErrorCode.THROTTLING, "slow down", retry_after=1.5),
]


@pytest.mark.parametrize("result", PROGRESS, ids=lambda r: f"{r.status.name}-{r.error_code}")
def test_progress_results_round_trip(result: ProgressResult) -> None:
    reply = OperationReply(call_id=9, result=result)
    assert plugin_round_trip(reply) == reply


def test_properties_none_and_empty_object_stay_distinct() -> None:
    none = plugin_round_trip(OperationReply(1, ProgressResult.success(Operation.DELETE, "x")))
    empty = plugin_round_trip(OperationReply(1, ProgressResult.success(Operation.READ, "x", {})))
    assert isinstance(none, OperationReply)
    assert isinstance(empty, OperationReply)
    assert isinstance(none.result, ProgressResult)
    assert isinstance(empty.result, ProgressResult)
    assert none.result.properties is None
    assert empty.result.properties == {}


def test_retry_after_travels_in_milliseconds() -> None:
    reply = plugin_round_trip(
        OperationReply(1, ProgressResult.in_progress(Operation.CREATE, "r", retry_after=0.0204))
    )
    assert isinstance(reply, OperationReply)
    assert isinstance(reply.result, ProgressResult)
    assert reply.result.retry_after == 0.02


@pytest.mark.parametrize(
    "result",
    [
        ListResult([ListedResource("b-1", NESTED), ListedResource("b-2", {})], next_page_token="p2"),
        ListResult([]),
    ],
)
def test_list_results_round_trip(result: ListResult) -> None:
    reply = OperationReply(call_id=3, result=result)
    assert plugin_round_trip(reply) == reply


def test_announcement_with_schemas_round_trips() -> None:
    announcement = Announcement(
        namespace="FakeAWS",
        plugin_name="fake-aws",
        plugin_version="1.2.3-rc.1",
        protocol_versions=(1, 2),
        node="fake-aws-41@host",
        rate_limit=12.5,
        max_concurrency=16,
        resource_types=(
            ResourceSchema("FakeAWS::EC2::VPC", "VpcId", ("CidrBlock",), ("VpcId",), {"type": "object"}),
            ResourceSchema("FakeAWS::S3::Bucket", "BucketName"),
        ),
        plugin_nonce=bytes(range(32)),
        proof=b"\x00\xff" * 16,
        pid=4242,
        heartbeat_interval=0.5,
        renews_certificate=True,
    )
    assert plugin_round_trip(announcement) == announcement
    silent = plugin_round_trip(announcement._replace(renews_certificate=False))
    assert isinstance(silent, Announcement)
    assert silent.renews_certificate is False


@pytest.mark.parametrize(
    "frame",
    [
        Challenge(agent_nonce=b"\x01" * 32, protocol_versions=(1,), agent_node="agent@host:49684"),
        AnnouncementAck(accepted=True, protocol_version=1, proof=b"p" * 32),
        AnnouncementAck(accepted=False, reason="authentication failed: wrong network cookie"),
        HeartbeatAck(sequence=77),
        CertificateRenewal(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
    ],
    ids=lambda f: type(f).__name__,
)
def test_handshake_and_heartbeat_agent_frames_round_trip(frame: AgentFrame) -> None:
    assert agent_round_trip(frame) == frame


def test_heartbeat_round_trips() -> None:
    assert plugin_round_trip(Heartbeat(sequence=2**33, in_flight=12)) == Heartbeat(2**33, 12)
    beat = plugin_round_trip(Heartbeat(1, 0, wall_time=1_767_225_600.25))
    assert isinstance(beat, Heartbeat)
    assert beat.wall_time == 1_767_225_600.25


# ---------------------------------------------------------------- what the codec refuses


DEEP = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
"""200 kB that Python's json parser cannot take without a RecursionError."""


def reply_with(**fields: Any) -> pb.PluginFrame:
    progress = pb.ProgressResult(operation=pb.OPERATION_CREATE, status=pb.OPERATION_STATUS_SUCCESS)
    for name, value in fields.items():
        setattr(progress, name, value)
    return pb.PluginFrame(reply=pb.OperationReply(call_id=1, progress=progress))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"operation": 99}, "unknown operation 99"),
        ({"operation": 0}, "unknown operation 0"),
        ({"status": 42}, "unknown operation status 42"),
        ({"error_code": 1000}, "unknown error code 1000"),
        ({"properties": b"{not json"}, "result properties is not valid JSON"),
        ({"properties": b"[1, 2]"}, "must be a JSON object"),
        ({"properties": b"\xff\xfe"}, "not valid JSON"),
        ({"properties": DEEP}, "result properties is nested too deeply"),
    ],
)
def test_a_bad_progress_result_is_handed_on_as_malformed_with_its_call_id(
    fields: dict[str, Any], message: str
) -> None:
    reply = decode_plugin_frame(reply_with(**fields))

    assert isinstance(reply, MalformedReply)
    assert reply.call_id == 1
    assert message in reply.reason


def test_a_malformed_reply_is_never_encoded() -> None:
    with pytest.raises(TypeError, match="never sent"):
        encode_plugin_frame(MalformedReply(1, "bad"))


@pytest.mark.parametrize(
    "call",
    [
        pb.OperationCall(call_id=1, create=pb.CreateRequest(resource_type="T", properties=b"{")),
        pb.OperationCall(call_id=1, create=pb.CreateRequest(resource_type="T", properties=b'"a string"')),
        pb.OperationCall(call_id=1, read=pb.ReadRequest(target=pb.TargetRef(label="t", config=b"nope"))),
        pb.OperationCall(call_id=1, update=pb.UpdateRequest(patch=b'{"op": "add"}')),
        pb.OperationCall(call_id=1),
        pb.OperationCall(call_id=1, create=pb.CreateRequest(resource_type="T", properties=DEEP)),
    ],
    ids=["invalid-json", "not-an-object", "bad-target-config", "patch-not-array", "no-request", "too-deep"],
)
def test_bad_operation_calls_raise_protocol_error(call: pb.OperationCall) -> None:
    with pytest.raises(ProtocolError):
        decode_agent_frame(pb.AgentFrame(call=call))


def test_bad_listed_resource_fails_its_call_and_bad_schema_raises() -> None:
    listed = pb.ListResult(resources=[pb.ListedResource(native_id="b-1", properties=b"{oops")])
    reply = decode_plugin_frame(pb.PluginFrame(reply=pb.OperationReply(call_id=1, list=listed)))
    assert isinstance(reply, MalformedReply)
    assert "properties of b-1" in reply.reason
    schema = pb.ResourceTypeSchema(type="X::Y::Z", json_schema=b"[]")
    with pytest.raises(ProtocolError, match="schema of X::Y::Z"):
        decode_plugin_frame(pb.PluginFrame(announcement=pb.Announcement(resource_types=[schema])))
    deep = pb.ResourceTypeSchema(type="X::Y::Z", json_schema=DEEP)
    with pytest.raises(ProtocolError, match="schema of X::Y::Z is nested too deeply"):
        decode_plugin_frame(pb.PluginFrame(announcement=pb.Announcement(resource_types=[deep])))


def test_empty_frames_raise_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="empty plugin frame"):
        decode_plugin_frame(pb.PluginFrame())
    with pytest.raises(ProtocolError, match="empty agent frame"):
        decode_agent_frame(pb.AgentFrame())
    reply = decode_plugin_frame(pb.PluginFrame(reply=pb.OperationReply(call_id=4)))
    assert isinstance(reply, MalformedReply)
    assert (reply.call_id, "carries no result" in reply.reason) == (4, True)


def test_unserialisable_properties_fail_to_encode() -> None:
    result = ProgressResult.success(Operation.READ, "x", {"When": object()})
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode_plugin_frame(OperationReply(1, result))


# ---------------------------------------------------------------- the SDK enums are the wire enums


@pytest.mark.parametrize(
    ("sdk", "wire", "prefix"),
    [
        (OperationStatus, pb.OperationStatus, "OPERATION_STATUS_"),
        (ErrorCode, pb.ErrorCode, "ERROR_CODE_"),
    ],
    ids=["OperationStatus", "ErrorCode"],
)
def test_sdk_enums_carry_the_proto_values(sdk: type[IntEnum], wire: Any, prefix: str) -> None:
    proto = {
        name.removeprefix(prefix): value for name, value in wire.items() if not name.endswith("UNSPECIFIED")
    }
    assert proto == {member.name: member.value for member in sdk}


@pytest.mark.parametrize("operation", list(Operation))
def test_every_model_operation_travels_as_the_proto_number_of_its_name(operation: Operation) -> None:
    frame = encode_plugin_frame(OperationReply(1, ProgressResult.success(operation, "n-1")))
    assert pb.Operation.Name(frame.reply.progress.operation) == f"OPERATION_{operation.name}"
    assert plugin_round_trip(OperationReply(1, ProgressResult.success(operation, "n-1"))) == OperationReply(
        1, ProgressResult.success(operation, "n-1")
    )


def test_the_proto_has_no_operation_the_model_lacks() -> None:
    names = {
        name.removeprefix("OPERATION_")
        for name, _ in pb.Operation.items()
        if not name.endswith("UNSPECIFIED")
    }
    assert names == {operation.name for operation in Operation}


# ---------------------------------------------------------------- importable on its own


def _import_fresh(name: str) -> None:
    """Import ``name`` as the first formae module of a fresh interpreter would, then restore sys.modules."""
    saved = {
        key: module for key, module in sys.modules.items() if key == "formae" or key.startswith("formae.")
    }
    for key in saved:
        del sys.modules[key]
    try:
        importlib.import_module(name)
    finally:
        for key in [k for k in sys.modules if k == "formae" or k.startswith("formae.")]:
            del sys.modules[key]
        sys.modules.update(saved)


def test_the_sdk_imports_first() -> None:
    _import_fresh("formae.plugin")
    assert sys.modules["formae.wire.codec"].decode_plugin_frame is decode_plugin_frame  # restored


@pytest.mark.parametrize("module", ["formae.wire.codec", "formae.wire.transport", "formae.wire.frames"])
def test_wire_modules_import_first(module: str) -> None:
    _import_fresh(module)
