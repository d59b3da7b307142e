"""ResourceUpdater against the real fake-aws plugin, announced through a real PluginHub in memory."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest
from formae_fake_aws import FakeAWSPlugin

from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import PluginRegistry
from formae.agent.updater import TRANSITIONS, CodeRule, ResourceUpdater, RetryPolicy
from formae.plugin import (
    CreateRequest,
    DeleteRequest,
    Operation,
    ProgressResult,
    ReadRequest,
    StatusRequest,
    TargetInfo,
    UpdateRequest,
)
from formae.plugin.testing import PluginHarness
from formae.store.records import ResourceUpdateRecord, UpdateState, utc_now
from formae.wire.types import OperationRequest
from tests.unit.memory_stream import connected

pytestmark = pytest.mark.timeout(10)

S = UpdateState
BUCKET = "FakeAWS::S3::Bucket"
VPC = "FakeAWS::EC2::VPC"
TARGET = TargetInfo("test", "FakeAWS", {"Region": "eu-west-1"})
POLICY = RetryPolicy(
    max_attempts=5,
    initial_delay=0.001,
    max_delay=0.005,
    poll_interval=0.001,
    max_poll_interval=0.005,
    call_timeout=2.0,
    plugin_wait=0.02,
)


class RecordingSink:
    def __init__(self) -> None:
        self.saved: list[ResourceUpdateRecord] = []

    async def save(self, update: ResourceUpdateRecord) -> None:
        self.saved.append(update)

    @property
    def states(self) -> list[UpdateState]:
        return [u.state for u in self.saved]


class RecordingFake(FakeAWSPlugin):
    """fake-aws that remembers every request it was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[OperationRequest] = []

    async def create(self, request: CreateRequest) -> ProgressResult:
        self.requests.append(request)
        return await super().create(request)

    async def read(self, request: ReadRequest) -> ProgressResult:
        self.requests.append(request)
        return await super().read(request)

    async def update(self, request: UpdateRequest) -> ProgressResult:
        self.requests.append(request)
        return await super().update(request)

    async def delete(self, request: DeleteRequest) -> ProgressResult:
        self.requests.append(request)
        return await super().delete(request)

    async def status(self, request: StatusRequest) -> ProgressResult:
        self.requests.append(request)
        return await super().status(request)

    def sent(self, kind: type) -> int:
        return sum(isinstance(r, kind) for r in self.requests)


def a_record(
    operation: Operation = Operation.CREATE, type: str = BUCKET, **fields: Any
) -> ResourceUpdateRecord:
    values: dict[str, Any] = {
        "command_id": "cmd-1",
        "update_id": "upd-1",
        "operation": operation,
        "stack": "default",
        "type": type,
        "label": "it",
        "target": "test",
        "state": S.PENDING,
        "updated_at": utc_now(),
        **fields,
    }
    return ResourceUpdateRecord(**values)


def assert_legal(start: ResourceUpdateRecord, saved: list[ResourceUpdateRecord]) -> None:
    states = [start.state, *(u.state for u in saved)]
    for before, after in itertools.pairwise(states):
        assert after in TRANSITIONS[before], f"{before} -> {after} in {states}"
    assert saved[-1].state.is_final


async def run(
    plugin: FakeAWSPlugin,
    record: ResourceUpdateRecord,
    properties: dict[str, Any] | None = None,
    policy: RetryPolicy = POLICY,
) -> tuple[ResourceUpdateRecord, RecordingSink]:
    limiter = RateLimiter()
    registry = PluginRegistry(limiter)
    sink = RecordingSink()
    async with connected(plugin, registry):
        final = await ResourceUpdater(registry, limiter, sink, policy, TARGET, properties).run(record)
    assert_legal(record, sink.saved)
    assert final == sink.saved[-1]  # what the caller gets is what was persisted last
    return final, sink


async def test_success_persists_dispatching_then_success() -> None:
    plugin = RecordingFake()
    final, sink = await run(plugin, a_record(), {"BucketName": "logs", "Versioning": True})

    assert sink.states == [S.DISPATCHING, S.SUCCESS]
    assert sink.saved[0].attempts == 0  # stored before sending: nothing received yet
    assert sink.saved[0].request_id is None
    assert (final.state, final.native_id, final.attempts, final.error_code, final.error) == (
        S.SUCCESS,
        "logs",
        1,
        None,
        None,
    )
    assert final.progress is not None
    assert final.progress.properties == {"BucketName": "logs", "Versioning": True}
    [create] = plugin.requests
    assert isinstance(create, CreateRequest)
    assert create.idempotency_key == "cmd-1/upd-1"
    assert create.target == TARGET
    assert plugin.cloud.resources["logs"].properties == {"BucketName": "logs", "Versioning": True}


async def test_in_progress_is_polled_until_success_keeping_the_request_id() -> None:
    plugin = RecordingFake()
    final, sink = await run(plugin, a_record(), {"BucketName": "slow", "FakeInProgressPolls": 3})

    assert sink.states == [S.DISPATCHING, S.IN_PROGRESS, S.IN_PROGRESS, S.IN_PROGRESS, S.SUCCESS]
    request_id = sink.saved[1].request_id
    assert request_id is not None
    assert request_id.startswith("req-")
    assert {u.request_id for u in sink.saved[1:]} == {request_id}
    assert final.request_id == request_id
    assert final.native_id == "slow"
    assert (plugin.sent(CreateRequest), plugin.sent(StatusRequest)) == (1, 3)
    polls = [r for r in plugin.requests if isinstance(r, StatusRequest)]
    assert {(r.request_id, r.operation) for r in polls} == {(request_id, Operation.CREATE)}
    assert [r.polls_left for r in plugin.cloud.requests.values()] == [0]  # finished, still answering


async def test_throttling_twice_then_success_takes_three_attempts() -> None:
    plugin = RecordingFake()
    properties = {"BucketName": "busy", "FakeFailWith": "Throttling", "FakeFailTimes": 2}
    final, sink = await run(plugin, a_record(), properties)

    assert final.state is S.SUCCESS
    assert final.attempts == 3
    assert sink.states == [
        S.DISPATCHING,
        S.WAITING_RETRY,
        S.DISPATCHING,
        S.WAITING_RETRY,
        S.DISPATCHING,
        S.SUCCESS,
    ]
    assert sink.saved[1].error_code == "Throttling"
    assert (final.error_code, final.error) == (None, None)
    assert plugin.sent(CreateRequest) == 3
    assert list(plugin.cloud.resources) == ["busy"]


async def test_already_exists_fails_without_retry() -> None:
    plugin = RecordingFake()
    await PluginHarness(plugin).create(BUCKET, {"BucketName": "taken"})
    plugin.requests.clear()

    final, sink = await run(plugin, a_record(), {"BucketName": "taken"})

    assert sink.states == [S.DISPATCHING, S.FAILED]
    assert (final.error_code, final.attempts) == ("AlreadyExists", 1)
    assert final.error == "FakeAWS::S3::Bucket 'taken' already exists"
    assert plugin.sent(CreateRequest) == 1


async def test_recoverable_failure_beyond_max_attempts_gives_up() -> None:
    plugin = RecordingFake()
    properties = {"BucketName": "doomed", "FakeFailWith": "ServiceInternalError", "FakeFailTimes": 10}
    policy = RetryPolicy(max_attempts=3, initial_delay=0.001, max_delay=0.002, poll_interval=0.001)
    final, sink = await run(plugin, a_record(), properties, policy)

    assert final.state is S.FAILED
    assert final.attempts == 3
    assert final.error_code == "ServiceInternalError"
    assert final.error is not None
    assert "gave up after 3 attempts" in final.error
    assert sink.states.count(S.WAITING_RETRY) == 2
    assert plugin.sent(CreateRequest) == 3
    assert plugin.cloud.resources == {}


async def test_delete_of_a_missing_resource_is_success() -> None:
    plugin = RecordingFake()
    final, sink = await run(plugin, a_record(Operation.DELETE, VPC, native_id="vpc-gone"))
    assert sink.states == [S.DISPATCHING, S.SUCCESS]
    assert final.native_id == "vpc-gone"
    [delete] = plugin.requests
    assert delete == DeleteRequest(VPC, "vpc-gone", TARGET)


async def test_update_and_delete_reach_the_cloud() -> None:
    plugin = RecordingFake()
    created = await PluginHarness(plugin).create(VPC, {"CidrBlock": "10.0.0.0/16", "Name": "a"})
    vpc_id = created.native_id
    prior = {"CidrBlock": "10.0.0.0/16", "Name": "a", "VpcId": vpc_id}

    update = a_record(Operation.UPDATE, VPC, native_id=vpc_id, prior_properties=prior, patch=[])
    final, _ = await run(plugin, update, {"CidrBlock": "10.0.0.0/16", "Name": "b"})
    assert final.state is S.SUCCESS
    assert plugin.cloud.resources[vpc_id].properties["Name"] == "b"

    final, _ = await run(plugin, a_record(Operation.DELETE, VPC, native_id=vpc_id, update_id="upd-2"))
    assert final.state is S.SUCCESS
    assert plugin.cloud.resources == {}


async def test_no_plugin_fails_with_no_plugin_error_code() -> None:
    limiter = RateLimiter()
    sink = RecordingSink()
    record = a_record()
    final = await ResourceUpdater(PluginRegistry(limiter), limiter, sink, POLICY, TARGET, {}).run(record)
    assert final.state is S.FAILED
    assert final.error_code == "NoPlugin"
    assert final.error == "no plugin registered for namespace FakeAWS (registered: none)"
    assert_legal(record, sink.saved)


async def test_a_plugin_that_stays_away_fails_after_max_attempts() -> None:
    limiter = RateLimiter()
    registry = PluginRegistry(limiter)
    async with connected(FakeAWSPlugin(), registry):
        pass  # announced, then gone: registered but unhealthy
    assert not registry.plugins()[0].healthy
    sink = RecordingSink()
    policy = RetryPolicy(max_attempts=2, initial_delay=0.001, plugin_wait=0.01)
    record = a_record()
    final = await ResourceUpdater(registry, limiter, sink, policy, TARGET, {"BucketName": "x"}).run(record)
    assert final.state is S.FAILED
    assert final.error_code == "PluginUnavailable"
    assert final.attempts == 0  # no plugin ever received it
    assert final.error is not None
    assert "gave up after 2 attempts" in final.error
    assert_legal(record, sink.saved)


async def test_resuming_an_in_progress_record_polls_instead_of_creating_again() -> None:
    plugin = RecordingFake()
    started = await PluginHarness(plugin).create(
        BUCKET, {"BucketName": "resumed", "FakeInProgressPolls": 2}, idempotency_key="cmd-1/upd-1"
    )
    assert started.request_id
    plugin.requests.clear()
    stored = a_record(state=S.IN_PROGRESS, attempts=1, request_id=started.request_id, native_id="resumed")

    final, sink = await run(plugin, stored, {"BucketName": "resumed", "FakeInProgressPolls": 2})

    assert final.state is S.SUCCESS
    assert final.attempts == 1
    assert sink.states == [S.IN_PROGRESS, S.SUCCESS]
    assert plugin.sent(CreateRequest) == 0
    assert plugin.sent(StatusRequest) == 2
    assert list(plugin.cloud.resources) == ["resumed"]


async def test_resuming_a_dispatching_record_sends_the_create_again_idempotently() -> None:
    plugin = RecordingFake()
    first = await PluginHarness(plugin).create(BUCKET, {"BucketName": "once"}, idempotency_key="cmd-1/upd-1")
    assert first.native_id == "once"
    stored = a_record(state=S.DISPATCHING, attempts=1)

    final, _ = await run(plugin, stored, {"BucketName": "once"})

    assert final.state is S.SUCCESS
    assert final.attempts == 2
    assert list(plugin.cloud.resources) == ["once"]


async def test_resuming_mid_backoff_with_a_request_id_polls_the_running_operation() -> None:
    plugin = RecordingFake()
    started = await PluginHarness(plugin).create(
        BUCKET, {"BucketName": "waiting", "FakeInProgressPolls": 1}, idempotency_key="cmd-1/upd-1"
    )
    plugin.requests.clear()
    stored = a_record(state=S.WAITING_RETRY, attempts=1, request_id=started.request_id, native_id="waiting")

    final, sink = await run(plugin, stored, {"BucketName": "waiting"})

    assert final.state is S.SUCCESS
    assert sink.states == [S.IN_PROGRESS, S.SUCCESS]
    assert plugin.sent(CreateRequest) == 0
    assert list(plugin.cloud.resources) == ["waiting"]


class NoRequestIdPlugin(FakeAWSPlugin):
    """Breaks the protocol: answers IN_PROGRESS without the request id needed to poll it."""

    async def create(self, request: CreateRequest) -> ProgressResult:
        return ProgressResult.in_progress(Operation.CREATE, "")


async def test_in_progress_without_request_id_fails_the_update_cleanly() -> None:
    final, _ = await run(NoRequestIdPlugin(), a_record(), {"BucketName": "x"})
    assert final.state is S.FAILED
    assert final.error_code == "PluginError"
    assert final.error == "the plugin answered InProgress without a request id to poll"


def test_transition_table_covers_every_state_and_final_states_are_terminal() -> None:
    assert set(TRANSITIONS) == set(UpdateState)
    for state, targets in TRANSITIONS.items():
        assert (targets == frozenset()) == state.is_final


async def test_an_operation_that_never_stabilizes_fails_instead_of_running_forever() -> None:
    plugin = RecordingFake()
    patient = RetryPolicy(
        max_attempts=5,
        initial_delay=0.001,
        max_delay=0.005,
        poll_interval=0.001,
        max_poll_interval=0.005,
        call_timeout=2.0,
        plugin_wait=0.02,
        stabilize_timeout=0.05,
    )

    final, _ = await run(
        plugin, a_record(), {"BucketName": "forever", "FakeInProgressPolls": 10_000}, patient
    )

    assert final.state is S.FAILED
    assert final.error_code == "StabilizeTimeout"
    assert final.request_id is not None
    assert final.error is not None
    assert final.error.startswith("still InProgress after 0.05s of polling request")
    assert plugin.sent(CreateRequest) == 1  # given up on, never sent again


# ------------------------------------------------ retry per error code (the configuration's retry.codes)


async def test_a_code_configured_not_to_be_retried_fails_at_once() -> None:
    plugin = RecordingFake()
    properties = {"BucketName": "busy", "FakeFailWith": "Throttling", "FakeFailTimes": 1}
    policy = replace(POLICY, codes={"Throttling": CodeRule(retry=False)})

    final, sink = await run(plugin, a_record(), properties, policy)

    assert sink.states == [S.DISPATCHING, S.FAILED]
    assert final.error_code == "Throttling"
    assert "retry.codes.Throttling.retry is off" in str(final.error)
    assert plugin.sent(CreateRequest) == 1


async def test_a_code_may_take_more_attempts_than_the_others() -> None:
    plugin = RecordingFake()
    properties = {"BucketName": "busy", "FakeFailWith": "Throttling", "FakeFailTimes": 6}
    policy = replace(POLICY, max_attempts=2, codes={"Throttling": CodeRule(max_attempts=7)})

    final, _ = await run(plugin, a_record(), properties, policy)

    assert (final.state, final.attempts) == (S.SUCCESS, 7)


async def test_a_code_that_is_not_retried_by_default_may_be() -> None:
    plugin = RecordingFake()
    await PluginHarness(plugin).create(BUCKET, {"BucketName": "taken"})
    policy = replace(POLICY, codes={"AlreadyExists": CodeRule(retry=True, max_attempts=3)})

    final, sink = await run(plugin, a_record(), {"BucketName": "taken"}, policy)

    assert (final.state, final.error_code, final.attempts) == (S.FAILED, "AlreadyExists", 3)
    assert sink.states.count(S.WAITING_RETRY) == 2
    assert "gave up after 3 attempts" in str(final.error)


def test_the_policy_answers_the_default_unless_a_code_is_configured() -> None:
    policy = RetryPolicy(max_attempts=4, codes={"NotFound": CodeRule(retry=True), "Throttling": CodeRule()})

    assert policy.retries("NotFound", False)
    assert policy.retries("Throttling", True)
    assert not policy.retries("InvalidRequest", False)
    assert (policy.attempts_for("NotFound"), policy.attempts_for("Throttling")) == (4, 4)
