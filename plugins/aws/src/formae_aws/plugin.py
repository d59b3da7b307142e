"""AWSPlugin: routes each request to its type's handler, in a worker thread, and answers formae's way.

boto3 blocks, so every handler call runs in the plugin's own thread pool (sized like
``max_concurrency``); the event loop only moves requests and answers. Every AWS error becomes an
``ErrorCode`` through ``formae_aws.errors``; nothing the plugin logs carries a property value.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from formae.plugin import (
    CreateRequest,
    DeleteRequest,
    ErrorCode,
    ListedResource,
    ListRequest,
    ListResult,
    Operation,
    ProgressResult,
    ReadRequest,
    ResourcePlugin,
    ResourceSchema,
    StatusRequest,
    TargetInfo,
    UpdateRequest,
)
from formae_aws.errors import map_error
from formae_aws.handler import Aws, Outcome, Refused, TypeHandler
from formae_aws.services import all_handlers
from formae_aws.session import Clients, ConfigError, TargetSettings

log = logging.getLogger("formae_aws")

T = TypeVar("T")

DEFAULT_RATE_LIMIT = 10.0
"""Operations per second: well under the API limits of every service served, shared by all of them."""
DEFAULT_THREADS = 16
QUIET_LOGGERS = ("boto3", "botocore", "urllib3")


class AWSPlugin(ResourcePlugin):
    name = "aws"
    namespace = "AWS"
    version = "0.1.0"

    def __init__(
        self,
        clients: Clients | None = None,
        *,
        rate_limit: float = DEFAULT_RATE_LIMIT,
        threads: int = DEFAULT_THREADS,
        handlers: list[TypeHandler] | None = None,
    ) -> None:
        self.clients = clients or Clients(pool_size=threads)
        self.rate_limit = rate_limit
        self.max_concurrency = threads
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self.handlers = {h.type_name: h for h in (handlers if handlers is not None else all_handlers())}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AWSPlugin:
        """``AWS_PLUGIN_RATE_LIMIT`` (operations per second, 0 = unlimited) and ``AWS_PLUGIN_THREADS``.

        Not ``FORMAE_*``: the agent keeps its own ``FORMAE_*`` settings from the plugins it spawns.
        """
        env = os.environ if env is None else env
        return cls(
            rate_limit=float(env.get("AWS_PLUGIN_RATE_LIMIT", DEFAULT_RATE_LIMIT)),
            threads=int(env.get("AWS_PLUGIN_THREADS", DEFAULT_THREADS)),
        )

    async def setup(self) -> None:
        for chatty in QUIET_LOGGERS:  # at DEBUG they log request parameters, secrets included
            logging.getLogger(chatty).setLevel(max(logging.INFO, logging.getLogger(chatty).level))
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="aws")

    async def teardown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def schemas(self) -> list[ResourceSchema]:
        return [handler.schema() for handler in self.handlers.values()]

    # ------------------------------------------------------------ operations

    async def create(self, request: CreateRequest) -> ProgressResult:
        def call(handler: TypeHandler, aws: Aws) -> Outcome:
            return handler.create(aws, request.label, request.properties, request.idempotency_key)

        return await self._operate(Operation.CREATE, request.resource_type, request.target, call)

    async def read(self, request: ReadRequest) -> ProgressResult:
        def call(handler: TypeHandler, aws: Aws) -> Outcome:
            properties = handler.read(aws, request.native_id)
            if properties is None:
                raise Refused(ErrorCode.NOT_FOUND, f"{request.resource_type} {request.native_id} not found")
            return Outcome(request.native_id, properties)

        return await self._operate(Operation.READ, request.resource_type, request.target, call)

    async def update(self, request: UpdateRequest) -> ProgressResult:
        def call(handler: TypeHandler, aws: Aws) -> Outcome:
            return handler.update(
                aws, request.native_id, request.prior_properties, request.desired_properties
            )

        return await self._operate(Operation.UPDATE, request.resource_type, request.target, call)

    async def delete(self, request: DeleteRequest) -> ProgressResult:
        def call(handler: TypeHandler, aws: Aws) -> Outcome:
            return handler.delete(aws, request.native_id)

        return await self._operate(Operation.DELETE, request.resource_type, request.target, call)

    async def status(self, request: StatusRequest) -> ProgressResult:
        try:
            operation, resource_type, native_id = _parse_request_id(request.request_id)
        except (KeyError, ValueError):
            return ProgressResult.failure(
                request.operation or Operation.READ,
                ErrorCode.NOT_FOUND,
                f"no operation with request id {request.request_id!r}",
            )

        def call(handler: TypeHandler, aws: Aws) -> Outcome:
            return handler.progress(aws, native_id, operation)

        return await self._operate(operation, resource_type, request.target, call)

    async def list(self, request: ListRequest) -> ListResult | ProgressResult:
        handler = self.handlers.get(request.resource_type)
        if handler is None:
            return ListResult([])
        try:
            aws = Aws(self.clients, TargetSettings.from_config(request.target.config))
            found, token = await self._in_thread(
                lambda: handler.list(aws, request.page_token, request.page_size)
            )
        except Exception as error:
            return self._failure(Operation.LIST, request.resource_type, error)
        return ListResult([ListedResource(native_id, props) for native_id, props in found], token)

    # ------------------------------------------------------------ plumbing

    async def _operate(
        self,
        operation: Operation,
        resource_type: str,
        target: TargetInfo,
        call: Callable[[TypeHandler, Aws], Outcome],
    ) -> ProgressResult:
        handler = self.handlers.get(resource_type)
        if handler is None:
            return ProgressResult.failure(
                operation, ErrorCode.UNSUPPORTED_TYPE, f"aws does not serve {resource_type}"
            )
        try:
            aws = Aws(self.clients, TargetSettings.from_config(target.config))
            outcome = await self._in_thread(lambda: call(handler, aws))
        except Exception as error:
            return self._failure(operation, resource_type, error)
        return _answer(operation, resource_type, handler, outcome)

    def _failure(self, operation: Operation, resource_type: str, error: Exception) -> ProgressResult:
        """An exception as formae's failure: refusals and config errors as they say, AWS's by the table."""
        if isinstance(error, Refused):
            return ProgressResult.failure(operation, error.code, str(error), resource_type=resource_type)
        if isinstance(error, ConfigError):
            return ProgressResult.failure(
                operation, ErrorCode.INVALID_REQUEST, str(error), resource_type=resource_type
            )
        mapped = map_error(error)
        if mapped.code is ErrorCode.PLUGIN_ERROR:
            log.exception("%s of %s failed", operation.name, resource_type)
        else:
            log.info("%s of %s: %s", operation.name, resource_type, mapped.message)
        return ProgressResult.failure(
            operation,
            mapped.code,
            mapped.message,
            retry_after=mapped.retry_after,
            resource_type=resource_type,
        )

    async def _in_thread(self, work: Callable[[], T]) -> T:
        if self._pool is None:  # used without setup(): the default executor
            return await asyncio.to_thread(work)
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)


def _answer(
    operation: Operation, resource_type: str, handler: TypeHandler, outcome: Outcome
) -> ProgressResult:
    if not outcome.settled:
        return ProgressResult.in_progress(
            operation,
            _request_id(operation, resource_type, outcome.native_id),
            native_id=outcome.native_id,
            resource_type=resource_type,
            retry_after=handler.poll_interval,
        )
    return ProgressResult.success(
        operation, outcome.native_id, outcome.properties, resource_type=resource_type
    )


def _request_id(operation: Operation, resource_type: str, native_id: str) -> str:
    """Everything a poll needs, in the id itself: a restarted plugin answers polls of its predecessor."""
    return f"{operation.name}|{resource_type}|{native_id}"


def _parse_request_id(request_id: str) -> tuple[Operation, str, str]:
    operation, resource_type, native_id = request_id.split("|", 2)
    return Operation[operation], resource_type, native_id
