"""What the agent remembers: commands, resource updates, resource versions, stacks, targets.

These frozen dataclasses are the persistent vocabulary shared by the agent, the API and the
store. They carry plain JSON-able values (dicts and lists for properties) so that they map
one-to-one onto table rows, and enums whose string values are what is stored, so that a
database row reads the same as the API's JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from formae.model import Mode, Operation, ResourceKey, Stack, Target

# The model's states under the names the store has always exported them by.
from formae.model.vocabulary import INCOMPLETE_COMMAND_STATES as INCOMPLETE_COMMAND_STATES
from formae.model.vocabulary import CommandState as CommandState
from formae.model.vocabulary import UpdateState as UpdateState
from formae.store.ids import new_id


def utc_now() -> datetime:
    """The store only holds timezone-aware UTC times; naive datetimes are refused on write."""
    return datetime.now(UTC)


class _Keyed:
    """What every record about one resource shares: the key that names it."""

    __slots__ = ()
    stack: str
    type: str
    label: str

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.stack, self.type, self.label)


class CommandKind(StrEnum):
    APPLY = "apply"
    DESTROY = "destroy"


class VersionOrigin(StrEnum):
    """Who wrote a resource version: a command, the synchronizer reading the cloud, or discovery."""

    COMMAND = "command"
    SYNC = "sync"
    """Read from the cloud and found different (or gone): drift, until a command writes again."""
    DISCOVERY = "discovery"


UNMANAGED_STACK = "$unmanaged"
"""Where discovery puts resources no stack manages, as formae does."""


@dataclass(frozen=True, slots=True)
class Command:
    """One ``apply`` or ``destroy`` as submitted; the forma is kept verbatim for resumption."""

    id: str
    kind: CommandKind
    mode: Mode
    state: CommandState
    forma: dict[str, Any] | None
    """None when read without it (``with_forma=False``): a big forma is costly to fetch for a status view."""
    simulate: bool
    force: bool
    created_at: datetime
    updated_at: datetime
    message: str = ""
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None

    @classmethod
    def new(
        cls,
        kind: CommandKind,
        mode: Mode,
        forma: dict[str, Any],
        *,
        simulate: bool = False,
        force: bool = False,
        state: CommandState = CommandState.PENDING,
    ) -> Command:
        """A new command (PENDING unless told) with a fresh time-sortable id."""
        now = utc_now()
        return cls(
            id=new_id(),
            kind=kind,
            mode=mode,
            state=state,
            forma=forma,
            simulate=simulate,
            force=force,
            created_at=now,
            updated_at=now,
        )


@dataclass(frozen=True, slots=True)
class Fence:
    """The lease an executor of a command holds: its writes count only while it is still current.

    Every write of a running command checks, in its own statement, that the command's
    ``lease_generation`` is still this one. Another agent taking the lease over bumps the
    generation, so the late writes of a paused agent that still thinks it holds it match nothing.
    """

    command_id: str
    generation: int


@dataclass(frozen=True, slots=True)
class PluginProgress:
    """The plugin's last answer about an update, as stored (one JSON column).

    Typed, where the updater, the executor and the synchronizer used to pass a dict and each
    read it by string key: the properties the plugin reported and its retry hint in particular.
    """

    operation: str
    status: str
    request_id: str | None = None
    native_id: str | None = None
    properties: dict[str, Any] | None = None
    error_code: str | None = None
    message: str = ""
    retry_after: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: Any) -> PluginProgress | None:
        """A stored answer; rows written before this type existed hold the same keys, or fewer."""
        if not isinstance(value, dict):
            return None
        properties = value.get("properties")
        return cls(
            operation=str(value.get("operation", "")),
            status=str(value.get("status", "")),
            request_id=value.get("request_id"),
            native_id=value.get("native_id"),
            properties=properties if isinstance(properties, dict) else None,
            error_code=value.get("error_code"),
            message=str(value.get("message") or ""),
            retry_after=float(value.get("retry_after") or 0.0),
        )


@dataclass(frozen=True, slots=True)
class ResourceUpdateRecord(_Keyed):
    """One resource operation of a command, as persisted after every step of the updater.

    ``request_id`` is set once the plugin answered InProgress: after a crash the updater resumes
    by polling it instead of calling Create again.
    """

    command_id: str
    update_id: str
    operation: Operation
    stack: str
    type: str
    label: str
    target: str
    state: UpdateState
    updated_at: datetime
    attempts: int = 0
    request_id: str | None = None
    native_id: str | None = None
    desired_properties: dict[str, Any] | None = None
    prior_properties: dict[str, Any] | None = None
    patch: list[Any] | None = None
    depends_on: list[str] = field(default_factory=list)
    progress: PluginProgress | None = None
    """The plugin's last answer; None until it answered."""
    error_code: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceRecord(_Keyed):
    """One version of a resource. The inventory is the latest version of each key, unless deleted.

    ``properties`` are as the cloud reported them; ``desired_properties`` as last written in the
    forma, references unresolved, so that a later reconcile can diff intent against intent.
    """

    stack: str
    type: str
    label: str
    target: str
    native_id: str | None
    properties: dict[str, Any]
    desired_properties: dict[str, Any]
    version: int
    deleted: bool
    command_id: str | None
    created_at: datetime
    managed: bool = True
    """False for what discovery found and no stack manages (stack ``$unmanaged``)."""
    origin: VersionOrigin = VersionOrigin.COMMAND


@dataclass(frozen=True, slots=True)
class NewResourceVersion(_Keyed):
    """What a caller knows when a resource changed; the store assigns version and time."""

    stack: str
    type: str
    label: str
    target: str
    native_id: str | None
    properties: dict[str, Any]
    desired_properties: dict[str, Any]
    command_id: str | None = None
    managed: bool = True
    origin: VersionOrigin = VersionOrigin.COMMAND
    adopts: bool = False
    """An adoption: the unmanaged resource with this native id is retired in the same transaction."""


@dataclass(frozen=True, slots=True)
class ResourceDeletion(_Keyed):
    """A resource is gone; the store appends a tombstone version so that history stays whole."""

    stack: str
    type: str
    label: str
    command_id: str | None = None
    origin: VersionOrigin = VersionOrigin.COMMAND

    @classmethod
    def of(
        cls, key: ResourceKey, command_id: str | None = None, origin: VersionOrigin = VersionOrigin.COMMAND
    ) -> ResourceDeletion:
        return cls(key.stack, key.type, key.label, command_id, origin)


ResourceChange = NewResourceVersion | ResourceDeletion


@dataclass(frozen=True, slots=True)
class StackRecord:
    label: str
    description: str = ""
    policies: list[dict[str, Any]] = field(default_factory=list)
    """As declared in the forma (``{"type": "ttl", "ttl_seconds": …}``, …); see ``agent/policies.py``."""
    expires_at: datetime | None = None
    """When a TTL policy destroys the stack."""
    reconciled_at: datetime | None = None
    """The last apply or auto-reconcile: an auto-reconcile policy counts its interval from here."""

    @classmethod
    def from_model(cls, stack: Stack, now: datetime | None = None) -> StackRecord:
        """The stack as an apply stores it: a TTL counts from now, and so does auto-reconcile."""
        now = now or utc_now()
        policies = [policy.model_dump(mode="json") for policy in stack.policies]
        ttl = next((p.ttl_seconds for p in stack.policies if p.type == "ttl"), None)
        expires_at = now + timedelta(seconds=ttl) if ttl is not None else None
        return cls(stack.label, stack.description, policies, expires_at, now)


@dataclass(frozen=True, slots=True)
class TargetRecord:
    label: str
    namespace: str
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_model(cls, target: Target) -> TargetRecord:
        return cls(target.label, target.namespace, dict(target.config))


@dataclass(frozen=True, slots=True)
class JoinTokenRecord:
    """A one-time join token as kept: the secret only as its SHA-256, never itself."""

    id: str
    secret_sha256: str
    namespaces: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    used_by: str | None = None
