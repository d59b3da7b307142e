"""PostgresPlugin: the PostgreSQL namespace served over the formae protocol.

Each type lives in its own module under ``kinds``; this class routes a request to its kind,
answers with what PostgreSQL reports after the change, and turns PostgreSQL's errors into the
protocol's error codes (SQLSTATE classes decide: a lost connection is retried, a syntax the
server refuses is the forma's fault).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import metadata

import asyncpg

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
    TargetInfo,
    UpdateRequest,
)
from formae_postgres.connections import Connections, Server
from formae_postgres.kinds.base import Context, Kind
from formae_postgres.kinds.database import DatabaseKind
from formae_postgres.kinds.default_privileges import DefaultPrivilegesKind
from formae_postgres.kinds.extension import ExtensionKind
from formae_postgres.kinds.grant import GrantKind
from formae_postgres.kinds.role import RoleKind
from formae_postgres.kinds.schema import SchemaKind
from formae_postgres.sql import Invalid, plain

_KINDS: dict[str, Kind] = {
    kind.schema.type: kind
    for kind in (
        DatabaseKind(),
        RoleKind(),
        SchemaKind(),
        ExtensionKind(),
        GrantKind(),
        DefaultPrivilegesKind(),
    )
}

_NOT_FOUND = (
    asyncpg.UndefinedObjectError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidSchemaNameError,
    asyncpg.UndefinedTableError,
    asyncpg.UndefinedFunctionError,
)
_ALREADY_EXISTS = (asyncpg.DuplicateObjectError, asyncpg.DuplicateDatabaseError, asyncpg.DuplicateSchemaError)
_BUSY = (asyncpg.ObjectInUseError, asyncpg.DependentObjectsStillExistError, asyncpg.LockNotAvailableError)
_SQLSTATE_CLASS = {
    "08": ErrorCode.NETWORK_FAILURE,  # connection exception
    "28": ErrorCode.INVALID_CREDENTIALS,  # invalid authorization specification
    "42": ErrorCode.INVALID_REQUEST,  # syntax error or access rule violation
    "22": ErrorCode.INVALID_REQUEST,  # data exception
    "0A": ErrorCode.INVALID_REQUEST,  # feature not supported
    "53": ErrorCode.SERVICE_LIMIT_EXCEEDED,  # insufficient resources (too many connections, disk full)
    "57": ErrorCode.SERVICE_INTERNAL_ERROR,  # operator intervention (shutting down)
    "40": ErrorCode.RESOURCE_CONFLICT,  # transaction rollback (serialization, deadlock)
    "55": ErrorCode.RESOURCE_CONFLICT,  # object not in prerequisite state
}


def _version() -> str:
    try:
        return metadata.version("formae-postgres")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0.0.0"


class PostgresPlugin(ResourcePlugin):
    name = "postgres"
    namespace = "PostgreSQL"
    version = _version()
    rate_limit = 0.0

    def __init__(self) -> None:
        self.connections = Connections()

    async def teardown(self) -> None:
        await self.connections.close()

    def schemas(self) -> list[ResourceSchema]:
        return [kind.schema for kind in _KINDS.values()]

    async def create(self, request: CreateRequest) -> ProgressResult:
        async def work(kind: Kind, cx: Context) -> ProgressResult:
            native_id = await kind.create(cx, request.properties, request.idempotency_key)
            return await _answer(Operation.CREATE, kind, cx, native_id)

        return await self._run(Operation.CREATE, request.resource_type, request.target, work)

    async def read(self, request: ReadRequest) -> ProgressResult:
        async def work(kind: Kind, cx: Context) -> ProgressResult:
            return await _answer(Operation.READ, kind, cx, request.native_id)

        return await self._run(Operation.READ, request.resource_type, request.target, work)

    async def update(self, request: UpdateRequest) -> ProgressResult:
        async def work(kind: Kind, cx: Context) -> ProgressResult:
            current = await kind.read(cx, request.native_id)
            if current is None:
                return _not_found(Operation.UPDATE, request.resource_type, request.native_id)
            changed = _create_only_changes(kind.schema, current, request.desired_properties)
            if changed:
                return ProgressResult.failure(
                    Operation.UPDATE,
                    ErrorCode.INVALID_REQUEST,
                    f"{', '.join(changed)} cannot change in place; the resource must be replaced",
                )
            await kind.update(cx, request.native_id, request.desired_properties)
            return await _answer(Operation.UPDATE, kind, cx, request.native_id)

        return await self._run(Operation.UPDATE, request.resource_type, request.target, work)

    async def delete(self, request: DeleteRequest) -> ProgressResult:
        async def work(kind: Kind, cx: Context) -> ProgressResult:
            if not await kind.delete(cx, request.native_id):
                return _not_found(Operation.DELETE, request.resource_type, request.native_id)
            return ProgressResult.success(
                Operation.DELETE, request.native_id, resource_type=request.resource_type
            )

        return await self._run(Operation.DELETE, request.resource_type, request.target, work)

    async def list(self, request: ListRequest) -> ListResult | ProgressResult:
        """A page of what exists, for discovery; a failure answered as any operation's would be."""
        kind = _KINDS.get(request.resource_type)
        if kind is None:
            return ListResult([])
        try:
            cx = Context(self.connections, Server.of(request.target))
            found, token = await kind.list(cx, request.page_token, request.page_size)
        except _FAILURES as error:
            return _failure(Operation.LIST, error)
        return ListResult([ListedResource(native_id, properties) for native_id, properties in found], token)

    async def _run(
        self,
        operation: Operation,
        resource_type: str,
        target: TargetInfo,
        work: Callable[[Kind, Context], Awaitable[ProgressResult]],
    ) -> ProgressResult:
        """``work`` on the type's kind, every failure answered with the error code it deserves."""
        kind = _KINDS.get(resource_type)
        if kind is None:
            return ProgressResult.failure(
                operation, ErrorCode.UNSUPPORTED_TYPE, f"{self.namespace} has no type {resource_type}"
            )
        try:
            return await work(kind, Context(self.connections, Server.of(target)))
        except _FAILURES as error:
            return _failure(operation, error)


async def _answer(operation: Operation, kind: Kind, cx: Context, native_id: str) -> ProgressResult:
    """Success with what PostgreSQL now reports, or NotFound."""
    properties = await kind.read(cx, native_id)
    if properties is None:
        return _not_found(operation, kind.schema.type, native_id)
    return ProgressResult.success(operation, native_id, properties, resource_type=kind.schema.type)


def _not_found(operation: Operation, resource_type: str, native_id: str) -> ProgressResult:
    return ProgressResult.failure(
        operation,
        ErrorCode.NOT_FOUND,
        f"{resource_type} {native_id} does not exist",
        resource_type=resource_type,
    )


def _create_only_changes(schema: ResourceSchema, current: JsonObject, desired: JsonObject) -> list[str]:
    """Create-only properties the forma sets to something other than what exists (unset ones are kept)."""
    return [
        name
        for name in schema.create_only
        if name in desired
        and name in current
        and _comparable(plain(desired[name])) != _comparable(current[name])
    ]


def _comparable(value: object) -> object:
    """Lists of names are sets to PostgreSQL: their order in the forma means nothing."""
    return sorted(value, key=str) if isinstance(value, list) else value


_FAILURES = (Invalid, asyncpg.PostgresError, TimeoutError, OSError, asyncpg.InterfaceError)
"""What an operation may fail with that is answered with an error code rather than as a plugin bug."""


def _failure(operation: Operation, error: Exception) -> ProgressResult:
    """``error`` answered with the code it deserves: the forma's fault, the server's, or the network's."""
    if isinstance(error, Invalid):
        return ProgressResult.failure(operation, ErrorCode.INVALID_REQUEST, str(error))
    if isinstance(error, asyncpg.PostgresError):
        return _server_failure(operation, error)
    return ProgressResult.failure(
        operation, ErrorCode.NETWORK_FAILURE, f"cannot reach PostgreSQL: {type(error).__name__}: {error}"
    )


def _server_failure(operation: Operation, error: asyncpg.PostgresError) -> ProgressResult:
    message = f"{error.sqlstate}: {error}"
    if isinstance(error, _NOT_FOUND):
        return ProgressResult.failure(operation, ErrorCode.NOT_FOUND, message)
    if isinstance(error, _ALREADY_EXISTS):
        return ProgressResult.failure(operation, ErrorCode.ALREADY_EXISTS, message)
    if isinstance(error, asyncpg.InsufficientPrivilegeError):
        return ProgressResult.failure(operation, ErrorCode.ACCESS_DENIED, message)
    if isinstance(error, _BUSY):
        return ProgressResult.failure(operation, ErrorCode.RESOURCE_CONFLICT, message, retry_after=1.0)
    code = _SQLSTATE_CLASS.get((error.sqlstate or "")[:2], ErrorCode.GENERAL_SERVICE_EXCEPTION)
    return ProgressResult.failure(operation, code, message)
