"""The one class a plugin author writes."""

from __future__ import annotations

from abc import ABC, abstractmethod

from formae.model import Operation
from formae.wire.types import (
    CreateRequest,
    DeleteRequest,
    ErrorCode,
    ListRequest,
    ListResult,
    ProgressResult,
    ReadRequest,
    ResourceSchema,
    StatusRequest,
    UpdateRequest,
)


class ResourcePlugin(ABC):
    """A cloud, seen as a set of resource types the agent can create, read, update and delete.

    Subclasses set the identity attributes and implement the four operations; ``status`` and
    ``list`` have defaults for plugins whose operations finish synchronously or that cannot
    enumerate. Operations run concurrently, so implementations must not block the event loop.
    """

    name: str = ""
    """Install name, e.g. ``fake-aws``: the directory under ``plugins/``."""
    namespace: str = ""
    """First segment of every type served, e.g. ``FakeAWS``."""
    version: str = "0.0.0"
    rate_limit: float = 0.0
    """Operations per second the agent may send to this namespace; 0 means unlimited."""
    max_concurrency: int = 0
    """Calls served at once; 0 means unlimited."""

    async def setup(self) -> None:
        """Called once before the plugin announces itself: open clients, load credentials."""

    async def teardown(self) -> None:
        """Called once when the plugin stops."""

    @abstractmethod
    def schemas(self) -> list[ResourceSchema]:
        """The types this plugin serves."""

    @abstractmethod
    async def create(self, request: CreateRequest) -> ProgressResult: ...

    @abstractmethod
    async def read(self, request: ReadRequest) -> ProgressResult: ...

    @abstractmethod
    async def update(self, request: UpdateRequest) -> ProgressResult: ...

    @abstractmethod
    async def delete(self, request: DeleteRequest) -> ProgressResult: ...

    async def status(self, request: StatusRequest) -> ProgressResult:
        """Progress of an operation that answered IN_PROGRESS; override when any can.

        The default fails with INVALID_REQUEST rather than NOT_FOUND: a plugin that answered
        IN_PROGRESS but forgot this method must not have its delete counted as done.
        """
        return ProgressResult.failure(
            request.operation or Operation.READ,
            ErrorCode.INVALID_REQUEST,
            f"{self.namespace} has no operation in progress with request id {request.request_id!r}",
        )

    async def list(self, request: ListRequest) -> ListResult | ProgressResult:
        """Every resource of a type that exists in the target; override to support discovery.

        When the cloud will not list, answer ``ProgressResult.failure`` with the reason's code:
        discovery retries the recoverable ones (THROTTLING, ...) as it does any operation.
        """
        return ListResult(resources=[])
