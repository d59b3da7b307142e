"""The pattern every resource type follows, so a type module only says what is particular to it.

A ``TypeHandler`` runs in a worker thread (boto3 blocks) and answers in plain values; the plugin
turns them into ``ProgressResult``s. What the base does for every type:

- **create** finds a resource an earlier attempt with the same idempotency key made (by the name
  the key generates, checked against the ``formae:idempotency-key`` tag, or by that tag alone for
  resources AWS names), else creates it with that tag; then brings its mutable properties to the
  desired values (``converge``) and reads it back;
- **update** reads the resource (gone: ``NOT_FOUND``), refuses a change to a create-only property
  (the agent replaces those), converges, reads back;
- **converge** compares, for each mutable property the forma sets now or set before or that has a
  default, the wanted value (``DEFAULTS`` when the forma does not set it) with what AWS has (for
  write-only properties, with what the forma set before) and calls ``apply`` for each difference —
  so an update also undoes drift on the properties the forma manages (tags always are);
- **delete** treats NotFound as done;
- **list** pages through identifiers and reads each;
- asynchronous types say with ``settled`` whether AWS has finished; until then the plugin answers
  IN_PROGRESS with a request id that names the operation, type and resource, so a restarted plugin
  can still answer the agent's polls.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from formae.plugin import ErrorCode, JsonObject, Operation, ResourceSchema
from formae_aws import schema as js
from formae_aws.errors import map_error
from formae_aws.session import Clients, TargetSettings

IDEMPOTENCY_TAG = "formae:idempotency-key"
RESERVED_TAG_PREFIXES = ("aws:", "formae:")


class Refused(Exception):
    """The request cannot be carried out as asked; ``code`` says why."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class AlreadyExists(Exception):
    """A resource of that name exists; the base then checks whether an earlier attempt made it."""


@dataclass(frozen=True, slots=True)
class Aws:
    """The boto3 clients of one target, for one call."""

    clients: Clients
    settings: TargetSettings

    def client(self, service: str) -> Any:
        return self.clients.client(self.settings, service)

    @property
    def region(self) -> str:
        return str(self.client("sts").meta.region_name)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a handler call did: finished (with the resource's properties, None once deleted) or not yet."""

    native_id: str
    properties: JsonObject | None
    settled: bool = True


class TypeHandler(ABC):
    """One resource type. Subclasses fill in the class attributes and the abstract methods."""

    type_name: ClassVar[str]
    description: ClassVar[str]
    identifier: ClassVar[str]
    properties: ClassVar[dict[str, js.JsonSchema]]
    required: ClassVar[tuple[str, ...]] = ()
    create_only: ClassVar[tuple[str, ...]] = ()
    read_only: ClassVar[tuple[str, ...]] = ()
    write_only: ClassVar[tuple[str, ...]] = ()
    sensitive: ClassVar[tuple[str, ...]] = ()
    mutable: ClassVar[tuple[str, ...]] = ()
    """Properties ``apply`` can change in place, in the order they are applied."""
    DEFAULTS: ClassVar[dict[str, Any]] = {"Tags": []}
    """The value a mutable property returns to when the forma stops setting it."""
    name_property: ClassVar[str | None] = None
    """The property naming the resource, when the user may leave it out and the plugin names it."""
    name_limit: ClassVar[int] = 64
    poll_interval: ClassVar[float] = 2.0

    # ------------------------------------------------------------ what each type says

    @abstractmethod
    def create_resource(self, aws: Aws, desired: JsonObject, key: str) -> str:
        """Make the resource (tagged with ``key`` where AWS takes tags at creation); its native id."""

    @abstractmethod
    def read_resource(self, aws: Aws, native_id: str) -> JsonObject | None:
        """Its properties as CloudFormation spells them, write-only ones left out; None when gone."""

    @abstractmethod
    def delete_resource(self, aws: Aws, native_id: str) -> None: ...

    @abstractmethod
    def list_ids(self, aws: Aws, token: str, size: int) -> tuple[list[str], str]:
        """One page of native ids and the token of the next page ("" at the end)."""

    def apply(self, aws: Aws, native_id: str, name: str, value: Any, current: JsonObject) -> None:
        """Set one mutable property; ``value`` is what the forma wants (``DEFAULTS`` if it stopped)."""
        raise Refused(ErrorCode.INVALID_REQUEST, f"{self.type_name} cannot change {name} in place")

    def find_by_key(self, aws: Aws, key: str) -> str | None:
        """The resource an earlier create with ``key`` made, for types AWS names (override)."""
        return None

    def find_by_name(self, aws: Aws, desired: JsonObject) -> tuple[str, str | None] | None:
        """For a name AWS said exists: its native id and its idempotency tag (override)."""
        return None

    def settled(self, aws: Aws, native_id: str, operation: Operation) -> bool:
        """Whether AWS has finished the operation; for DELETE, whether the resource is gone."""
        return True

    # ------------------------------------------------------------ the pattern

    def schema(self) -> ResourceSchema:
        document = js.resource_schema(
            self.type_name,
            self.description,
            dict(self.properties),
            identifier=self.identifier,
            required=self.required,
            create_only=self.create_only,
            read_only=self.read_only,
            write_only=self.write_only,
            sensitive=self.sensitive,
        )
        return ResourceSchema(self.type_name, self.identifier, self.create_only, self.read_only, document)

    def create(self, aws: Aws, label: str, desired: JsonObject, key: str) -> Outcome:
        desired = self.named(label, desired, key)
        native_id = self.find_by_key(aws, key) if key else None
        if native_id is None:
            native_id = self._create_or_adopt(aws, desired, key)
        if not self.settled(aws, native_id, Operation.CREATE):
            return Outcome(native_id, None, settled=False)
        given = {name: desired[name] for name in self.write_only if name in desired}
        return self._converge_and_read(aws, native_id, desired, given)

    def read(self, aws: Aws, native_id: str) -> JsonObject | None:
        try:
            return self.read_resource(aws, native_id)
        except ClientError as error:
            if map_error(error).code is ErrorCode.NOT_FOUND:
                return None
            raise

    def update(self, aws: Aws, native_id: str, prior: JsonObject, desired: JsonObject) -> Outcome:
        changed = [
            name for name in self.create_only if name in desired and not same(prior.get(name), desired[name])
        ]
        if changed:
            raise Refused(
                ErrorCode.INVALID_REQUEST, f"{', '.join(changed)} of {self.type_name} cannot change in place"
            )
        if self.name_property and self.name_property not in desired and self.name_property in prior:
            desired = {**desired, self.name_property: prior[self.name_property]}
        outcome = self._converge_and_read(aws, native_id, desired, prior)
        if not self.settled(aws, native_id, Operation.UPDATE):
            return Outcome(native_id, None, settled=False)
        return outcome

    def delete(self, aws: Aws, native_id: str) -> Outcome:
        try:
            self.delete_resource(aws, native_id)
        except ClientError as error:
            if map_error(error).code is not ErrorCode.NOT_FOUND:
                raise
            return Outcome(native_id, None)
        return Outcome(native_id, None, settled=self.settled(aws, native_id, Operation.DELETE))

    def progress(self, aws: Aws, native_id: str, operation: Operation) -> Outcome:
        """Where an operation that answered IN_PROGRESS stands now."""
        if not self.settled(aws, native_id, operation):
            return Outcome(native_id, None, settled=False)
        if operation is Operation.DELETE:
            return Outcome(native_id, None)
        return Outcome(native_id, self._must_read(aws, native_id))

    def list(self, aws: Aws, token: str, size: int) -> tuple[list[tuple[str, JsonObject]], str]:
        ids, next_token = self.list_ids(aws, token, size)
        found = [(native_id, self.read(aws, native_id)) for native_id in ids]
        return [(native_id, props) for native_id, props in found if props is not None], next_token

    def named(self, label: str, desired: JsonObject, key: str) -> JsonObject:
        """``desired`` with a name, when the type has one and the forma left it out.

        The name comes from the idempotency key, so a create retried with the same key asks for
        the same name and finds the first attempt's resource.
        """
        if self.name_property is None or desired.get(self.name_property):
            return desired
        digest = hashlib.sha256((key or json.dumps(desired, sort_keys=True)).encode()).hexdigest()[:12]
        stem = re.sub(r"[^A-Za-z0-9-]", "-", label or "resource")[: self.name_limit - 20]
        return {**desired, self.name_property: self.shape_name(f"formae-{stem}-{digest}")}

    def shape_name(self, name: str) -> str:
        """A generated name as the service accepts it (S3 wants lower case)."""
        return name

    # ------------------------------------------------------------ internals

    def _create_or_adopt(self, aws: Aws, desired: JsonObject, key: str) -> str:
        try:
            return self.create_resource(aws, desired, key)
        except (AlreadyExists, ClientError) as error:
            if isinstance(error, ClientError) and map_error(error).code is not ErrorCode.ALREADY_EXISTS:
                raise
            found = self.find_by_name(aws, desired) if key else None
            if found is None or found[1] != key:
                raise Refused(
                    ErrorCode.ALREADY_EXISTS, f"{self.type_name} {self._name(desired)} already exists"
                ) from error
            return found[0]

    def _converge_and_read(self, aws: Aws, native_id: str, desired: JsonObject, prior: JsonObject) -> Outcome:
        current = self._must_read(aws, native_id)
        if self.converge(aws, native_id, current, desired, prior):
            current = self._must_read(aws, native_id)
        return Outcome(native_id, current)

    def converge(
        self, aws: Aws, native_id: str, current: JsonObject, desired: JsonObject, prior: JsonObject
    ) -> bool:
        """Apply each mutable property whose wanted value differs from what AWS has; True if any did."""
        changes: dict[str, Any] = {}
        for name in self.mutable:
            if name not in desired and name not in prior and name not in self.DEFAULTS:
                continue
            want = desired.get(name, self.DEFAULTS.get(name))
            have = prior.get(name) if name in self.write_only else current.get(name, self.DEFAULTS.get(name))
            if not same(want, have):
                changes[name] = want
        if not changes:
            return False
        self.apply_changes(aws, native_id, changes, current)
        return True

    def apply_changes(self, aws: Aws, native_id: str, changes: dict[str, Any], current: JsonObject) -> None:
        """Apply every change, one ``apply`` each; types whose API takes several at once override this."""
        for name, value in changes.items():
            self.apply(aws, native_id, name, value, current)

    def _must_read(self, aws: Aws, native_id: str) -> JsonObject:
        properties = self.read(aws, native_id)
        if properties is None:
            raise Refused(ErrorCode.NOT_FOUND, f"{self.type_name} {native_id} not found")
        return properties

    def _name(self, desired: JsonObject) -> str:
        return str(desired.get(self.name_property or self.identifier, ""))


# ---------------------------------------------------------------- helpers for type modules


def same(a: Any, b: Any) -> bool:
    """Equal as JSON, with tag lists compared as sets."""
    return _canonical(a) == _canonical(b)


def _canonical(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(item, dict) and "Key" in item for item in value):
        value = sorted(value, key=lambda item: str(item["Key"]))
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        value = sorted(value)  # lists of names or ARNs are sets to AWS
    return json.dumps(value, sort_keys=True)


def tags_from(pairs: Iterable[Mapping[str, Any]], key: str = "Key", value: str = "Value") -> list[JsonObject]:
    """AWS's tags as CloudFormation's sorted ``[{Key, Value}]``, reserved ones left out."""
    tags = [{"Key": str(p[key]), "Value": str(p[value])} for p in pairs if not _reserved(str(p[key]))]
    return sorted(tags, key=lambda tag: tag["Key"])


def tags_from_map(mapping: Mapping[str, Any]) -> list[JsonObject]:
    return tags_from({"Key": k, "Value": v} for k, v in mapping.items())


def creation_tags(desired: JsonObject, key: str) -> list[JsonObject]:
    """The forma's tags plus the idempotency tag, for APIs that tag at creation."""
    tags = [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in desired.get("Tags") or []]
    return [*tags, {"Key": IDEMPOTENCY_TAG, "Value": key}] if key else tags


def tag_changes(
    current: list[JsonObject] | None, wanted: list[JsonObject] | None
) -> tuple[dict[str, str], list[str]]:
    """Tags to set and tag keys to remove to go from ``current`` to ``wanted``."""
    have = {t["Key"]: t["Value"] for t in current or []}
    want = {str(t["Key"]): str(t["Value"]) for t in wanted or [] if not _reserved(str(t["Key"]))}
    to_set = {k: v for k, v in want.items() if have.get(k) != v}
    return to_set, [k for k in have if k not in want]


def idempotency_tag(pairs: Iterable[Mapping[str, Any]], key: str = "Key", value: str = "Value") -> str | None:
    for pair in pairs:
        if pair[key] == IDEMPOTENCY_TAG:
            return str(pair[value])
    return None


def page(items: list[str], token: str, size: int) -> tuple[list[str], str]:
    """A page of a list AWS returns whole: the token is the offset."""
    start = int(token or 0)
    size = size or 100
    end = start + size
    return items[start:end], str(end) if end < len(items) else ""


def drop_empty(properties: Mapping[str, Any]) -> JsonObject:
    """The properties that say something: CloudFormation leaves unset ones out."""
    return {k: v for k, v in properties.items() if v is not None and v != [] and v != {}}


def _reserved(key: str) -> bool:
    return key.startswith(RESERVED_TAG_PREFIXES)
