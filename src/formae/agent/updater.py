"""ResourceUpdater: carries one resource operation to its end through the registry to a plugin.

Its state is a ResourceUpdateRecord; every transition is checked against TRANSITIONS and handed
to the sink (the datastore) before the next step begins, so that an agent restarted after a crash
resumes exactly where it stopped: a DISPATCHING create is sent again with the same idempotency key,
an IN_PROGRESS one polls Status with its stored request id. Recoverable error codes and a plugin
that went away are retried with exponential backoff; everything else fails the update.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from formae.agent.plugin_calls import call_plugin
from formae.agent.plugin_link import PluginLink, PluginUnavailable
from formae.agent.rate_limiter import RateLimiter
from formae.agent.registry import NoPluginError, PluginRegistry
from formae.backoff import exponential_delay, jittered
from formae.logs import bound
from formae.model import Operation
from formae.model.resource_type import namespace_of
from formae.store.records import PluginProgress, ResourceUpdateRecord, UpdateState, utc_now
from formae.telemetry.hooks import Telemetry
from formae.wire.types import (
    CreateRequest,
    DeleteRequest,
    ErrorCode,
    OperationRequest,
    OperationStatus,
    ProgressResult,
    ReadRequest,
    StatusRequest,
    TargetInfo,
    UpdateRequest,
)

log = logging.getLogger("formae.agent.updater")

S = UpdateState
TRANSITIONS: dict[UpdateState, frozenset[UpdateState]] = {
    S.PENDING: frozenset({S.DISPATCHING, S.FAILED, S.CANCELED}),
    # DISPATCHING -> DISPATCHING: an agent that died mid-call sends the same request again on resume.
    S.DISPATCHING: frozenset(
        {S.DISPATCHING, S.IN_PROGRESS, S.SUCCESS, S.FAILED, S.WAITING_RETRY, S.CANCELED}
    ),
    S.IN_PROGRESS: frozenset({S.IN_PROGRESS, S.SUCCESS, S.FAILED, S.WAITING_RETRY, S.CANCELED}),
    S.WAITING_RETRY: frozenset({S.DISPATCHING, S.IN_PROGRESS, S.FAILED, S.CANCELED}),
    S.SUCCESS: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELED: frozenset(),
}

NO_PLUGIN = "NoPlugin"
PLUGIN_UNAVAILABLE = "PluginUnavailable"
STABILIZE_TIMEOUT = "StabilizeTimeout"
PLUGIN_ERROR = ErrorCode.PLUGIN_ERROR.wire_name


_NOT_RETRIED = " (not retried: the configuration's retry.codes.{}.retry is off)"


class IllegalTransition(RuntimeError):
    pass


class UpdateSink(Protocol):
    async def save(self, update: ResourceUpdateRecord) -> None: ...


@dataclass(frozen=True)
class CodeRule:
    """The configuration's word on one error code (``retry.codes`` in the file); None: the default."""

    retry: bool | None = None
    max_attempts: int | None = None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    initial_delay: float = 0.05
    max_delay: float = 5.0
    poll_interval: float = 0.05
    max_poll_interval: float = 1.0
    call_timeout: float = 60.0
    plugin_wait: float = 30.0
    """How long to wait for a namespace's plugin to come back before the attempt counts as failed."""
    max_lost_calls: int = 32
    """Calls lost with their plugin (it died or hung up before answering) before the update fails.

    Not attempts: the operation did not fail, its plugin did (ten plugin SIGKILLs in one apply must
    not fail it); the bound only stops a request that kills every plugin it reaches."""
    stabilize_timeout: float = 3600.0
    """How long an operation may stay InProgress (counted from when this agent began polling it)."""

    codes: Mapping[str, CodeRule] = field(default_factory=dict)
    """By error code (``Throttling``, ``PluginUnavailable`` …): whether it is retried, and how often."""

    def retries(self, code: str, default: bool) -> bool:
        """Whether an update failing with ``code`` is tried again; ``default`` unless configured."""
        rule = self.codes.get(code)
        return default if rule is None or rule.retry is None else rule.retry

    def attempts_for(self, code: str) -> int:
        rule = self.codes.get(code)
        return self.max_attempts if rule is None or rule.max_attempts is None else rule.max_attempts

    def backoff(self, attempt: int, hint: float = 0.0) -> float:
        """The wait before retry ``attempt``: the plugin's hint (Retry-After) if that is longer."""
        return max(hint, jittered(exponential_delay(attempt, self.initial_delay, self.max_delay), 0.25))


class ResourceUpdater:
    def __init__(
        self,
        registry: PluginRegistry,
        limiter: RateLimiter,
        sink: UpdateSink,
        policy: RetryPolicy,
        target: TargetInfo,
        properties: dict[str, Any] | None,
        *,
        in_flight: asyncio.Semaphore | None = None,
        telemetry: Telemetry | None = None,
        before_call: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._registry = registry
        self._telemetry = telemetry or Telemetry.off()
        self._before_call = before_call
        """Awaited before each request is sent: the command's lease confirmed (``CommandLeases.confirm``),
        so an agent that was paused or cut off sends nothing for a command another agent took over."""
        self._in_flight = in_flight or asyncio.Semaphore(1)
        """Shared by the namespace's updaters: bounds the calls waiting on its plugins, nothing else."""
        self._limiter = limiter
        self._sink = sink
        self._policy = policy
        self._target = target
        self._unanswered = 0
        """Waits of the current run that found no plugin in ``plugin_wait``: bounded like attempts."""
        self._lost = 0
        """Calls of the current run lost with their plugin: bounded by ``max_lost_calls``."""
        self._properties = properties
        """Desired properties with references resolved: what the plugin is sent."""

    async def run(self, update: ResourceUpdateRecord) -> ResourceUpdateRecord:
        """Drive ``update`` to its end (see ``_run``): its log lines carry the resource, and it runs
        inside its span (``{operation} {type}``), one per operation, when tracing is on."""
        with bound(resource=update.key, namespace=namespace_of(update.type)):
            tracing = self._telemetry.tracing
            if not tracing.enabled:
                return await self._run(update)
            attributes = {"formae.resource": str(update.key), "formae.command_id": update.command_id}
            with tracing.span(f"{update.operation} {update.type}", attributes):
                return await self._run(update)

    async def _run(self, update: ResourceUpdateRecord) -> ResourceUpdateRecord:
        """Drive ``update`` to SUCCESS or FAILED; resumes from whatever state it is given.

        ``attempts`` counts the requests a plugin answered (Status polls aside): waiting for a
        plugin, a rate-limit token or a restart of the agent spends none. Calls that got no answer
        (the plugin went away) are bounded by ``max_attempts`` too, counted in memory.
        """
        namespace = namespace_of(update.type)
        self._unanswered = 0
        self._lost = 0
        polls = 0
        polling_since: float | None = None
        while not update.state.is_final:
            if _polling(update):
                if update.state is S.WAITING_RETRY:  # resumed mid-backoff: the operation is still running
                    update = await self._move(update, S.IN_PROGRESS)
                polling_since = polling_since or time.monotonic()
                if time.monotonic() - polling_since > self._policy.stabilize_timeout:
                    return await self._give_up_polling(update)
                polls += 1
                await asyncio.sleep(self._poll_delay(update, polls))
                result = await self._call(namespace, self._status_request(update))
            else:
                update = await self._move(update, S.DISPATCHING, request_id=None)
                result = await self._call(namespace, self._request(update))
                if isinstance(result, ProgressResult):  # the plugin received it: one attempt
                    update = replace(update, attempts=update.attempts + 1)
            update = await self._absorb(update, result)
        return update

    # ------------------------------------------------------------ one step

    async def _call(self, namespace: str, request: OperationRequest) -> ProgressResult | Exception:
        try:
            link = await self._plugin_for(namespace)
        except (NoPluginError, PluginUnavailable) as error:
            return error
        async with self._in_flight:
            if self._before_call is not None:
                await self._before_call()
            try:
                with bound(node=link.node):
                    result = await call_plugin(
                        link,
                        request,
                        self._policy.call_timeout,
                        limiter=self._limiter,
                        telemetry=self._telemetry,
                    )
            except PluginUnavailable as error:
                return _PluginLost(str(error))
        if not isinstance(result, ProgressResult):
            return _PluginLost(
                f"plugin {link.node} answered a {type(result).__name__} to a resource operation"
            )
        return result

    async def _give_up_polling(self, update: ResourceUpdateRecord) -> ResourceUpdateRecord:
        """An operation that never ends must not keep its command running forever."""
        error = (
            f"still InProgress after {self._policy.stabilize_timeout:g}s of polling "
            f"request {update.request_id}; the cloud may finish it later, so check the resource "
            "before applying again"
        )
        return await self._move(update, S.FAILED, error_code=STABILIZE_TIMEOUT, error=error)

    async def _plugin_for(self, namespace: str) -> PluginLink:
        """A healthy plugin, waiting a while for one: after an agent restart plugins announce late."""
        try:
            return self._registry.lookup(namespace)
        except (NoPluginError, PluginUnavailable) as error:
            try:
                return await self._registry.wait_for(namespace, self._policy.plugin_wait)
            except TimeoutError:
                raise error from None

    async def _absorb(
        self, update: ResourceUpdateRecord, result: ProgressResult | Exception
    ) -> ResourceUpdateRecord:
        """The next state after the plugin's answer (or the failure to get one)."""
        if isinstance(result, NoPluginError):
            return await self._move(update, S.FAILED, error_code=NO_PLUGIN, error=str(result))
        if isinstance(result, _PluginLost):
            self._lost += 1
            return await self._retry_or_fail(update, PLUGIN_UNAVAILABLE, str(result), 0.0)
        if isinstance(result, Exception):  # no plugin came within plugin_wait
            self._unanswered += 1
            return await self._retry_or_fail(update, PLUGIN_UNAVAILABLE, str(result), 0.0)
        progress = _progress_of(result)
        native_id = result.native_id or update.native_id
        if result.status is OperationStatus.SUCCESS or _already_gone(update, result):
            return await self._move(
                update, S.SUCCESS, native_id=native_id, progress=progress, error_code=None, error=None
            )
        if result.status is OperationStatus.IN_PROGRESS:
            if not (result.request_id or update.request_id):
                error = "the plugin answered InProgress without a request id to poll"
                return await self._move(
                    update, S.FAILED, progress=progress, error_code=PLUGIN_ERROR, error=error
                )
            return await self._move(
                update,
                S.IN_PROGRESS,
                request_id=result.request_id or update.request_id,
                native_id=native_id,
                progress=progress,
            )
        code = result.error_code or ErrorCode.SERVICE_INTERNAL_ERROR
        if self._policy.retries(code.wire_name, code.recoverable):  # send it again rather than poll it
            update = replace(update, request_id=None, progress=progress)
            return await self._retry_or_fail(update, code.wire_name, result.message, result.retry_after)
        error = result.message + (_NOT_RETRIED.format(code.wire_name) if code.recoverable else "")
        return await self._move(update, S.FAILED, progress=progress, error_code=code.wire_name, error=error)

    async def _retry_or_fail(
        self, update: ResourceUpdateRecord, code: str, message: str, hint: float
    ) -> ResourceUpdateRecord:
        tries = max(update.attempts, self._unanswered)
        if not self._policy.retries(code, True):
            error = message + _NOT_RETRIED.format(code)
            return await self._move(update, S.FAILED, error_code=code, error=error)
        if tries >= self._policy.attempts_for(code) or self._lost >= self._policy.max_lost_calls:
            lost = f", {self._lost} calls lost with their plugin" if self._lost else ""
            error = f"{message} (gave up after {tries} attempts{lost})"
            return await self._move(update, S.FAILED, error_code=code, error=error)
        update = await self._move(update, S.WAITING_RETRY, error_code=code, error=message)
        self._telemetry.metrics.retry(code)
        delay = self._policy.backoff(max(tries, min(self._lost, 6)), hint)
        log.info("retrying %s %s in %.2fs after %s: %s", update.operation, update.key, delay, code, message)
        await asyncio.sleep(delay)
        if update.request_id:  # the plugin was lost while we polled: poll again, no attempt spent
            return await self._move(update, S.IN_PROGRESS)
        return update

    async def _move(
        self, update: ResourceUpdateRecord, state: UpdateState, **changes: Any
    ) -> ResourceUpdateRecord:
        if state not in TRANSITIONS[update.state]:
            raise IllegalTransition(f"{update.key}: {update.state} -> {state}")
        moved = replace(update, state=state, updated_at=utc_now(), **changes)
        await self._sink.save(moved)
        log.debug("%s %s: %s -> %s", update.operation, update.key, update.state, state)
        return moved

    # ------------------------------------------------------------ requests

    def _request(self, update: ResourceUpdateRecord) -> OperationRequest:
        match update.operation:
            case Operation.CREATE:
                return CreateRequest(
                    update.type,
                    update.label,
                    self._properties or {},
                    self._target,
                    idempotency_key=f"{update.command_id}/{update.update_id}",
                )
            case Operation.UPDATE:
                return UpdateRequest(
                    update.type,
                    update.native_id or "",
                    update.prior_properties or {},
                    self._properties or {},
                    list(update.patch or []),
                    self._target,
                )
            case Operation.DELETE:
                return DeleteRequest(update.type, update.native_id or "", self._target)
            case Operation.READ:  # the synchronizer's reads, and adoptions that change nothing
                return ReadRequest(update.type, update.native_id or "", self._target)
            case Operation.LIST:
                raise ValueError(f"update {update.update_id}: a list is not a resource update")

    def _status_request(self, update: ResourceUpdateRecord) -> StatusRequest:
        return StatusRequest(update.request_id or "", update.type, self._target, update.operation)

    def _poll_delay(self, update: ResourceUpdateRecord, polls: int) -> float:
        hint = update.progress.retry_after if update.progress else 0.0
        return hint or min(self._policy.max_poll_interval, self._policy.poll_interval * 1.5 ** (polls - 1))


class _PluginLost(Exception):
    """The call reached a plugin link that failed before an answer: the plugin died or hung up."""


def _polling(update: ResourceUpdateRecord) -> bool:
    """True when the plugin holds a running operation to ask about, rather than one to send."""
    return update.request_id is not None and update.state in (S.IN_PROGRESS, S.WAITING_RETRY)


def _already_gone(update: ResourceUpdateRecord, result: ProgressResult) -> bool:
    """Deleting what the cloud no longer has is what the user asked for."""
    return update.operation is Operation.DELETE and result.error_code is ErrorCode.NOT_FOUND


def _progress_of(result: ProgressResult) -> PluginProgress:
    return PluginProgress(
        operation=result.operation.name,
        status=result.status.name,
        request_id=result.request_id,
        native_id=result.native_id,
        properties=result.properties,
        error_code=result.error_code.wire_name if result.error_code else None,
        message=result.message,
        retry_after=result.retry_after,
    )
