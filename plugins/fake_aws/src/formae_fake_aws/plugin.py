"""FakeAWSPlugin: VPCs, subnets and buckets in a cloud kept in this process or shared by replicas."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from formae.plugin import (
    CreateRequest,
    DeleteRequest,
    ErrorCode,
    JsonObject,
    ListedResource,
    ListRequest,
    ListResult,
    Operation,
    ProgressResult,
    ReadRequest,
    ResourcePlugin,
    ResourceSchema,
    StatusRequest,
    UpdateRequest,
)
from formae_fake_aws.behaviour import Behaviour
from formae_fake_aws.cloud import (
    Cloud,
    CloudResource,
    MemoryCloud,
    NativeIdTaken,
    PendingRequest,
    open_cloud,
    state_file,
)
from formae_fake_aws.schemas import BUCKET_SCHEMA, SUBNET_SCHEMA, VPC_SCHEMA

VPC = "FakeAWS::EC2::VPC"
SUBNET = "FakeAWS::EC2::Subnet"
BUCKET = "FakeAWS::S3::Bucket"
POLL_HINT = 0.02
"""Seconds the fake asks the agent to wait between Status polls: it has no real cloud to wait for."""


@dataclass(frozen=True)
class _Kind:
    schema: ResourceSchema
    id_prefix: str  # "" when the user names the resource (buckets)


_KINDS = {
    VPC: _Kind(
        ResourceSchema(
            VPC, "VpcId", create_only=("CidrBlock",), read_only=("VpcId",), json_schema=VPC_SCHEMA
        ),
        "vpc-",
    ),
    SUBNET: _Kind(
        ResourceSchema(
            SUBNET,
            "SubnetId",
            create_only=("VpcId", "CidrBlock"),
            read_only=("SubnetId",),
            json_schema=SUBNET_SCHEMA,
        ),
        "subnet-",
    ),
    BUCKET: _Kind(
        ResourceSchema(BUCKET, "BucketName", create_only=("BucketName",), json_schema=BUCKET_SCHEMA), ""
    ),
}


def kind_of(resource_type: str) -> _Kind | None:
    """The schema and id prefix of a type fake-aws serves, or None: for the cloud console."""
    return _KINDS.get(resource_type)


class _Refusal(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class FakeAWSPlugin(ResourcePlugin):
    name = "fake-aws"
    namespace = "FakeAWS"
    version = "1.0.0"

    def __init__(
        self, cloud: Cloud | None = None, behaviour: Behaviour | None = None, rate_limit: float = 0
    ) -> None:
        self.cloud = cloud if cloud is not None else MemoryCloud()
        self.behaviour = behaviour or Behaviour()
        self.rate_limit = rate_limit

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FakeAWSPlugin:
        """The plugin as configured by its environment: the cloud is in ``state_file(env)``."""
        env = os.environ if env is None else env
        return cls(
            cloud=open_cloud(state_file(env)),
            behaviour=Behaviour.from_env(env),
            rate_limit=float(env.get("FAKE_AWS_RATE_LIMIT", "0")),
        )

    async def teardown(self) -> None:
        self.cloud.close()

    def schemas(self) -> list[ResourceSchema]:
        return [kind.schema for kind in _KINDS.values()]

    # ------------------------------------------------------------ operations

    async def create(self, request: CreateRequest) -> ProgressResult:
        kind = _KINDS.get(request.resource_type)
        if kind is None:
            return _unsupported(Operation.CREATE, request.resource_type)
        token = request.idempotency_key
        earlier = self.cloud.token_owner(token) if token else None
        if earlier is not None:  # a retry of a create that went through: no injected failure again
            return self._created_before(request, earlier)
        behaviour = await self._misbehave(request.properties, f"create:{token or request.label}")
        if isinstance(behaviour, ProgressResult):
            return behaviour
        try:
            resource = self._new_resource(kind, request)
            pending = _pending(Operation.CREATE, resource, behaviour)
            owner = self.cloud.create(resource, token, pending)
        except _Refusal as refusal:
            return ProgressResult.failure(Operation.CREATE, refusal.code, str(refusal))
        except NativeIdTaken as taken:
            return ProgressResult.failure(Operation.CREATE, ErrorCode.ALREADY_EXISTS, str(taken))
        if owner != resource.native_id:  # a retry on another replica, or overtaking us while we were slow
            return self._created_before(request, owner)
        return _answer(Operation.CREATE, resource, pending)

    async def read(self, request: ReadRequest) -> ProgressResult:
        resource = self.cloud.get(request.native_id)
        if resource is None or resource.type != request.resource_type:
            return _not_found(Operation.READ, request.resource_type, request.native_id)
        return ProgressResult.success(
            Operation.READ, resource.native_id, resource.properties, resource_type=resource.type
        )

    async def update(self, request: UpdateRequest) -> ProgressResult:
        resource = self.cloud.get(request.native_id)
        if resource is None:
            return _not_found(Operation.UPDATE, request.resource_type, request.native_id)
        behaviour = await self._misbehave(request.desired_properties, f"update:{request.native_id}")
        if isinstance(behaviour, ProgressResult):
            return behaviour
        changed = _create_only_changes(
            _KINDS[resource.type].schema, resource.properties, request.desired_properties
        )
        if changed:
            return ProgressResult.failure(
                Operation.UPDATE, ErrorCode.INVALID_REQUEST, f"{', '.join(changed)} cannot change in place"
            )
        identifier = _KINDS[resource.type].schema.identifier
        updated = CloudResource(
            resource.type, resource.native_id, {**request.desired_properties, identifier: resource.native_id}
        )
        pending = _pending(Operation.UPDATE, updated, behaviour)
        if not self.cloud.update(updated, pending):  # deleted through another replica meanwhile
            return _not_found(Operation.UPDATE, request.resource_type, request.native_id)
        return _answer(Operation.UPDATE, updated, pending)

    async def delete(self, request: DeleteRequest) -> ProgressResult:
        resource = self.cloud.get(request.native_id)
        if resource is None:
            return _not_found(Operation.DELETE, request.resource_type, request.native_id)
        behaviour = await self._misbehave(resource.properties, f"delete:{request.native_id}")
        if isinstance(behaviour, ProgressResult):
            return behaviour
        dependants = self.cloud.referrers(SUBNET, "VpcId", resource.native_id) if resource.type == VPC else []
        if dependants:
            return ProgressResult.failure(
                Operation.DELETE,
                ErrorCode.RESOURCE_CONFLICT,
                f"{resource.native_id} still has subnets: {', '.join(dependants)}",
            )
        pending = _pending(Operation.DELETE, resource, behaviour)
        if not self.cloud.remove(resource.native_id, pending):  # deleted through another replica meanwhile
            return _not_found(Operation.DELETE, request.resource_type, request.native_id)
        return _answer(Operation.DELETE, resource, pending)

    async def status(self, request: StatusRequest) -> ProgressResult:
        pending = self.cloud.poll_request(request.request_id)
        if pending is None:
            return ProgressResult.failure(
                request.operation or Operation.READ,
                ErrorCode.NOT_FOUND,
                f"no operation with request id {request.request_id!r}",
            )
        operation = Operation[pending.operation]
        if pending.polls_left > 0:
            return ProgressResult.in_progress(
                operation,
                pending.request_id,
                native_id=pending.native_id,
                resource_type=pending.type,
                retry_after=POLL_HINT,
            )
        resource = self.cloud.get(pending.native_id)
        properties = resource.properties if resource is not None else None
        return ProgressResult.success(operation, pending.native_id, properties, resource_type=pending.type)

    async def list(self, request: ListRequest) -> ListResult:
        """Pages of ``page_size`` (all at once when 0), in native id order; the token is the last id sent."""
        found = sorted(self.cloud.of_type(request.resource_type), key=lambda r: r.native_id)
        if request.page_token:
            found = [r for r in found if r.native_id > request.page_token]
        page = found[: request.page_size] if request.page_size else found
        more = len(page) < len(found)
        return ListResult(
            [ListedResource(r.native_id, r.properties) for r in page], page[-1].native_id if more else ""
        )

    # ------------------------------------------------------------ helpers

    async def _misbehave(self, properties: JsonObject, attempt_key: str) -> Behaviour | ProgressResult:
        """The behaviour for this call, or the injected failure it must answer with."""
        behaviour = self.behaviour.overridden_by(properties)
        if behaviour.delay_ms:
            await asyncio.sleep(behaviour.delay_ms / 1000)
        if behaviour.fail_with is not None:
            attempt = self.cloud.count_attempt(attempt_key)  # in the cloud: replicas share the count
            if attempt <= behaviour.fail_times:
                operation = Operation[attempt_key.split(":", 1)[0].upper()]
                return ProgressResult.failure(
                    operation,
                    behaviour.fail_with,
                    f"injected {behaviour.fail_with.wire_name} ({attempt}/{behaviour.fail_times})",
                    retry_after=0.01 if behaviour.fail_with is ErrorCode.THROTTLING else 0.0,
                )
        return behaviour

    def _new_resource(self, kind: _Kind, request: CreateRequest) -> CloudResource:
        properties = dict(request.properties)
        if kind.id_prefix:
            native_id = f"{kind.id_prefix}{secrets.token_hex(9)[:17]}"
        else:
            native_id = str(properties.get(kind.schema.identifier) or "")
            if not native_id:
                raise _Refusal(ErrorCode.INVALID_REQUEST, f"{kind.schema.identifier} is required")
        if kind.schema.type == SUBNET:
            self._check_vpc(properties.get("VpcId"))
        properties[kind.schema.identifier] = native_id
        return CloudResource(kind.schema.type, native_id, properties)

    def _check_vpc(self, vpc_id: Any) -> None:
        vpc = self.cloud.get(str(vpc_id))
        if vpc is None or vpc.type != VPC:
            raise _Refusal(ErrorCode.INVALID_REQUEST, f"VpcId {vpc_id!r} does not name an existing VPC")

    def _created_before(self, request: CreateRequest, native_id: str) -> ProgressResult:
        """A retried create: answer with what the first attempt made, never make a second one."""
        pending = self.cloud.pending_for(native_id)
        if pending is not None:
            return ProgressResult.in_progress(
                Operation.CREATE,
                pending.request_id,
                native_id=native_id,
                resource_type=request.resource_type,
            )
        resource = self.cloud.get(native_id)
        if resource is None:
            return _not_found(Operation.CREATE, request.resource_type, native_id)
        return ProgressResult.success(
            Operation.CREATE, native_id, resource.properties, resource_type=resource.type
        )


def _pending(operation: Operation, resource: CloudResource, behaviour: Behaviour) -> PendingRequest | None:
    """The request to store with the change when the behaviour wants it to answer InProgress first."""
    if behaviour.in_progress_polls <= 0:
        return None
    return PendingRequest(
        f"req-{secrets.token_hex(16)}",
        operation.name,
        resource.type,
        resource.native_id,
        behaviour.in_progress_polls,
    )


def _answer(operation: Operation, resource: CloudResource, pending: PendingRequest | None) -> ProgressResult:
    """The answer to a change the cloud made: InProgress while it has a pending request, else Success."""
    if pending is not None:
        return ProgressResult.in_progress(
            operation,
            pending.request_id,
            native_id=resource.native_id,
            resource_type=resource.type,
            retry_after=POLL_HINT,
        )
    properties = None if operation is Operation.DELETE else resource.properties
    return ProgressResult.success(operation, resource.native_id, properties, resource_type=resource.type)


def _create_only_changes(schema: ResourceSchema, current: JsonObject, desired: JsonObject) -> list[str]:
    return [name for name in schema.create_only if name in desired and desired[name] != current.get(name)]


def _not_found(operation: Operation, resource_type: str, native_id: str) -> ProgressResult:
    return ProgressResult.failure(operation, ErrorCode.NOT_FOUND, f"{resource_type} {native_id!r} not found")


def _unsupported(operation: Operation, resource_type: str) -> ProgressResult:
    return ProgressResult.failure(
        operation, ErrorCode.UNSUPPORTED_TYPE, f"fake-aws does not serve {resource_type}"
    )
