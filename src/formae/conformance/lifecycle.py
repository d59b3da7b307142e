"""The operation checks: a resource's whole life, idempotent create, IN_PROGRESS, codes, concurrency.

Every answer is recorded, so that the checks about all answers (each FAILURE carries a code, each
result names the operation it reports on) look at everything the plugin said, not at one example.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from formae.agent.plugin_link import PluginUnavailable
from formae.conformance.endpoint import AgentEndpoint
from formae.conformance.report import CheckFailed, Outcome, Report, Scenario
from formae.model import Operation
from formae.wire.types import (
    CreateRequest,
    DeleteRequest,
    ErrorCode,
    JsonObject,
    ListRequest,
    ListResult,
    OperationRequest,
    OperationStatus,
    ProgressResult,
    ReadRequest,
    StatusRequest,
    TargetInfo,
    UpdateRequest,
    operation_of,
)

MAX_POLLS = 200
CONCURRENT_CALLS = 16


@dataclass
class _Seen:
    answers: list[tuple[OperationRequest, ProgressResult]] = field(default_factory=list)
    in_progress: list[str] = field(default_factory=list)
    """``op type: request id`` of every IN_PROGRESS answered to an operation, polled to its end."""


class Lifecycle:
    def __init__(
        self, endpoint: AgentEndpoint, namespace: str, types: list[str], report: Report, config: JsonObject
    ) -> None:
        self._endpoint = endpoint
        self._namespace = namespace
        self._types = types
        self._report = report
        self._target = TargetInfo("conformance", namespace, config)
        self._seen = _Seen()

    async def run(self, scenarios: Sequence[Scenario]) -> None:
        if not scenarios:
            self._report.add(
                "resource lifecycle",
                Outcome.SKIP,
                "give --type TYPE --properties FILE to take a resource through its life",
            )
        for scenario in scenarios:
            await self._life(scenario.type, scenario.properties, scenario.update)
        await self._check("errors carry codes", self._errors)
        await self._check("IN_PROGRESS then status", self._polled)
        await self._check("results name their operation", self._operations)
        await self._check("concurrent calls", self._concurrent)

    async def _check(self, name: str, check: Callable[[], Awaitable[str]]) -> bool:
        try:
            detail = await check()
        except _Skip as skip:
            self._report.add(name, Outcome.SKIP, str(skip))
            return True
        except (CheckFailed, AssertionError, PluginUnavailable) as failed:
            self._report.add(name, Outcome.FAIL, str(failed))
            return False
        self._report.add(name, Outcome.PASS, detail)
        return True

    # ------------------------------------------------------------ talking to the plugin

    async def _call(self, request: OperationRequest) -> ProgressResult:
        result = await self._endpoint.call(self._namespace, request)
        if not isinstance(result, ProgressResult):
            raise CheckFailed(f"{type(request).__name__} was answered with a {type(result).__name__}")
        self._seen.answers.append((request, result))
        return result

    async def _to_the_end(self, request: OperationRequest) -> ProgressResult:
        """The request's final answer, polling Status (with the original operation) while IN_PROGRESS."""
        result = await self._call(request)
        request_id = result.request_id
        for _ in range(MAX_POLLS):
            if result.status is not OperationStatus.IN_PROGRESS:
                return result
            if not request_id:
                raise CheckFailed(f"{type(request).__name__} answered IN_PROGRESS without a request id")
            self._seen.in_progress.append(
                f"{operation_of(request).name} {request.resource_type}: {request_id}"
            )
            await asyncio.sleep(min(result.retry_after or 0.05, 1.0))
            poll = StatusRequest(request_id, request.resource_type, self._target, operation_of(request))
            result = await self._call(poll)
            request_id = result.request_id or request_id
        raise CheckFailed(f"still IN_PROGRESS after {MAX_POLLS} status polls")

    # ------------------------------------------------------------ one resource's life

    async def _life(self, kind: str, properties: JsonObject, update: JsonObject | None) -> None:
        key = f"conformance/{secrets.token_hex(8)}/create:{kind}"
        created: list[ProgressResult] = []

        async def create() -> str:
            result = await self._to_the_end(CreateRequest(kind, "conformance", properties, self._target, key))
            _succeeded(result, "create")
            if not result.native_id:
                raise CheckFailed("a created resource must have a native id")
            _includes(result.properties, properties, "the created resource's properties")
            created.append(result)
            return f"native id {result.native_id}"

        if not await self._check(f"{kind}: create", create):
            return
        native_id = created[0].native_id

        async def again() -> str:
            result = await self._to_the_end(CreateRequest(kind, "conformance", properties, self._target, key))
            _succeeded(result, "the repeated create")
            if result.native_id != native_id:
                raise CheckFailed(
                    f"made a second resource {result.native_id} instead of answering with {native_id}"
                )
            return "answered with the first resource"

        await self._check(f"{kind}: create retried with the same idempotency key", again)
        await self._check(f"{kind}: read", lambda: self._read(kind, native_id, properties))
        desired = {**(created[0].properties or properties), **(update or {})}

        async def change() -> str:
            prior = created[0].properties or properties
            patch = [{"op": "replace", "path": f"/{k}", "value": v} for k, v in (update or {}).items()]
            result = await self._to_the_end(
                UpdateRequest(kind, native_id, prior, desired, patch, self._target)
            )
            _succeeded(result, "update")
            return "changed " + (", ".join(update) if update else "nothing (give --update-properties FILE)")

        if await self._check(f"{kind}: update", change):
            await self._check(f"{kind}: read after update", lambda: self._read(kind, native_id, update or {}))
        await self._check(f"{kind}: list", lambda: self._list(kind, native_id))

        async def delete() -> str:
            _succeeded(await self._to_the_end(DeleteRequest(kind, native_id, self._target)), "delete")
            return "deleted"

        if await self._check(f"{kind}: delete", delete):
            await self._check(f"{kind}: read after delete is NotFound", lambda: self._gone(kind, native_id))

    async def _read(self, kind: str, native_id: str, expected: JsonObject) -> str:
        result = await self._to_the_end(ReadRequest(kind, native_id, self._target))
        _succeeded(result, "read")
        _includes(result.properties, expected, "the read properties")
        return f"{len(result.properties or {})} properties"

    async def _list(self, kind: str, native_id: str) -> str:
        found: list[str] = []
        token = ""
        for _ in range(100):
            result = await self._endpoint.call(self._namespace, ListRequest(kind, self._target, token, 0))
            if not isinstance(result, ListResult):
                raise CheckFailed(f"list was answered with a {type(result).__name__}")
            found.extend(r.native_id for r in result.resources)
            token = result.next_page_token
            if not token:
                break
        if native_id not in found:
            raise CheckFailed(f"{native_id} is not among the {len(found)} resources listed")
        return f"{len(found)} listed"

    async def _gone(self, kind: str, native_id: str) -> str:
        result = await self._to_the_end(ReadRequest(kind, native_id, self._target))
        if result.status is not OperationStatus.FAILURE or result.error_code is not ErrorCode.NOT_FOUND:
            raise CheckFailed(f"expected FAILURE NotFound, got {_said(result)}")
        return "NotFound"

    # ------------------------------------------------------------ checks over everything

    async def _errors(self) -> str:
        missing = f"{self._types[0] if self._types else self._namespace + '::A::B'}"
        probes: list[tuple[str, OperationRequest, ErrorCode | None]] = [
            (
                "a read of a resource that does not exist",
                ReadRequest(missing, f"conformance-missing-{secrets.token_hex(4)}", self._target),
                ErrorCode.NOT_FOUND,
            ),
            (
                "a status poll of an unknown request id",
                StatusRequest(f"conformance-{secrets.token_hex(4)}", missing, self._target, Operation.CREATE),
                None,
            ),
            (
                "a create of a type it does not serve",
                CreateRequest(
                    f"{self._namespace}::Conformance::Unserved",
                    "x",
                    {},
                    self._target,
                    f"conformance/{secrets.token_hex(4)}",
                ),
                None,
            ),
        ]
        problems = []
        for what, request, code in probes:
            result = await self._call(request)
            if result.status is not OperationStatus.FAILURE or (
                code is not None and result.error_code is not code
            ):
                expected = code.wire_name if code else "with a code"
                problems.append(f"{what} answered {_said(result)}, expected FAILURE {expected}")
        uncoded = [
            f"{type(r).__name__}"
            for r, a in self._seen.answers
            if a.status is OperationStatus.FAILURE and a.error_code is None
        ]
        if uncoded:
            problems.append(f"FAILURE without an error code answered to {', '.join(uncoded)}")
        if problems:
            raise CheckFailed("; ".join(problems))
        failures = sum(a.status is OperationStatus.FAILURE for _, a in self._seen.answers)
        return f"{failures} failures, each with a code"

    async def _polled(self) -> str:
        if not self._seen.in_progress:
            raise _Skip("the plugin never answered IN_PROGRESS")
        return f"{len(self._seen.in_progress)} IN_PROGRESS answers, each polled to its end"

    async def _operations(self) -> str:
        wrong = [
            f"{type(request).__name__} answered as {result.operation.name}, "
            f"expected {operation_of(request).name}"
            for request, result in self._seen.answers
            if result.operation is not operation_of(request)
        ]
        if wrong:
            raise CheckFailed("; ".join(dict.fromkeys(wrong)))
        return f"{len(self._seen.answers)} answers"

    async def _concurrent(self) -> str:
        kind = self._types[0] if self._types else f"{self._namespace}::A::B"
        reads = [
            ReadRequest(kind, f"conformance-concurrent-{i}", self._target) for i in range(CONCURRENT_CALLS)
        ]
        results = await asyncio.gather(*(self._endpoint.call(self._namespace, r) for r in reads))
        if not all(isinstance(r, ProgressResult) for r in results):
            raise CheckFailed("a read was answered with something other than a ProgressResult")
        return f"{CONCURRENT_CALLS} reads at once, all answered"


class _Skip(Exception):
    pass


def _said(result: ProgressResult) -> str:
    code = f" {result.error_code.wire_name}" if result.error_code else ""
    return f"{result.status.name}{code}" + (f" ({result.message})" if result.message else "")


def _succeeded(result: ProgressResult, what: str) -> None:
    if result.status is not OperationStatus.SUCCESS:
        raise CheckFailed(f"{what} answered {_said(result)}")


def _includes(actual: JsonObject | None, expected: JsonObject, what: str) -> None:
    if actual is None:
        raise CheckFailed(f"{what} were not reported (empty): report the resource as the cloud has it")
    differ = [k for k, v in expected.items() if actual.get(k) != v]
    if differ:
        raise CheckFailed(f"{what} differ from the desired ones in {', '.join(differ)}")
