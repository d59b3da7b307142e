"""Records ↔ table rows, written once for both dialects.

Each table's column list is defined here once; the INSERT statements and the parameter tuples
are both derived from it, so a column cannot be added to one and forgotten in the other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from formae.model import Mode, Operation
from formae.store._dialect import Dialect, Row
from formae.store.records import (
    Command,
    CommandKind,
    CommandState,
    JoinTokenRecord,
    PluginProgress,
    ResourceRecord,
    ResourceUpdateRecord,
    StackRecord,
    TargetRecord,
    UpdateState,
    VersionOrigin,
)

COMMAND_COLUMNS = (
    "id", "kind", "mode", "state", "forma", "simulate", "force", "message",
    "lease_owner", "lease_expires_at", "created_at", "updated_at",
)  # fmt: skip
UPDATE_COLUMNS = (
    "command_id", "update_id", "operation", "stack", "type", "label", "target", "state",
    "attempts", "request_id", "native_id", "desired_properties", "prior_properties", "patch",
    "depends_on", "progress", "error_code", "error", "updated_at",
)  # fmt: skip
RESOURCE_COLUMNS = (
    "stack", "type", "label", "version", "target", "native_id", "properties",
    "desired_properties", "deleted", "command_id", "created_at", "managed", "origin",
)  # fmt: skip
STACK_COLUMNS = ("label", "description", "policies", "expires_at", "reconciled_at")
TARGET_COLUMNS = ("label", "namespace", "config")


def insert_sql(table: str, columns: Sequence[str], conflict: Sequence[str] = ()) -> str:
    """INSERT with ``$n`` placeholders; with ``conflict`` columns, an upsert replacing the rest."""
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
    if conflict:
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in conflict)
        sql += f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"
    return sql


def encode_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), allow_nan=False)


def decode_json(value: Any) -> Any:
    return None if value is None else json.loads(value)


def command_params(d: Dialect, c: Command) -> tuple[Any, ...]:
    return (
        c.id, c.kind.value, c.mode.value, c.state.value, encode_json(c.forma), c.simulate, c.force,
        c.message, c.lease_owner, d.encode_time(c.lease_expires_at), d.encode_time(c.created_at),
        d.encode_time(c.updated_at),
    )  # fmt: skip


def command_from_row(d: Dialect, r: Row) -> Command:
    return Command(
        id=r["id"],
        kind=CommandKind(r["kind"]),
        mode=Mode(r["mode"]),
        state=CommandState(r["state"]),
        forma=decode_json(r["forma"]),
        simulate=bool(r["simulate"]),
        force=bool(r["force"]),
        message=r["message"],
        lease_owner=r["lease_owner"],
        lease_expires_at=d.decode_optional_time(r["lease_expires_at"]),
        created_at=d.decode_time(r["created_at"]),
        updated_at=d.decode_time(r["updated_at"]),
    )


PROGRESS_COLUMNS = (
    "state",
    "attempts",
    "request_id",
    "native_id",
    "progress",
    "error_code",
    "error",
    "updated_at",
)
"""What changes as an update runs; the plan (properties, patch, dependencies) is fixed at creation."""


def progress_params(d: Dialect, u: ResourceUpdateRecord) -> tuple[Any, ...]:
    """Key first, then PROGRESS_COLUMNS, for ``datastore._SAVE_PROGRESS``."""
    return (
        u.command_id, u.update_id, u.state.value, u.attempts, u.request_id, u.native_id,
        _progress(u), u.error_code, u.error, d.encode_time(u.updated_at),
    )  # fmt: skip


def update_params(d: Dialect, u: ResourceUpdateRecord) -> tuple[Any, ...]:
    return (
        u.command_id, u.update_id, u.operation.value, u.stack, u.type, u.label, u.target,
        u.state.value, u.attempts, u.request_id, u.native_id, encode_json(u.desired_properties),
        encode_json(u.prior_properties), encode_json(u.patch), encode_json(list(u.depends_on)),
        _progress(u), u.error_code, u.error, d.encode_time(u.updated_at),
    )  # fmt: skip


def update_from_row(d: Dialect, r: Row) -> ResourceUpdateRecord:
    return ResourceUpdateRecord(
        command_id=r["command_id"],
        update_id=r["update_id"],
        operation=Operation(r["operation"]),
        stack=r["stack"],
        type=r["type"],
        label=r["label"],
        target=r["target"],
        state=UpdateState(r["state"]),
        attempts=int(r["attempts"]),
        request_id=r["request_id"],
        native_id=r["native_id"],
        desired_properties=decode_json(r["desired_properties"]),
        prior_properties=decode_json(r["prior_properties"]),
        patch=decode_json(r["patch"]),
        depends_on=decode_json(r["depends_on"]),
        progress=PluginProgress.from_json(decode_json(r["progress"])),
        error_code=r["error_code"],
        error=r["error"],
        updated_at=d.decode_time(r["updated_at"]),
    )


def resource_params(d: Dialect, v: ResourceRecord) -> tuple[Any, ...]:
    return (
        v.stack, v.type, v.label, v.version, v.target, v.native_id, encode_json(v.properties),
        encode_json(v.desired_properties), v.deleted, v.command_id, d.encode_time(v.created_at),
        v.managed, v.origin.value,
    )  # fmt: skip


def resource_params_without_version(d: Dialect, v: ResourceRecord) -> tuple[Any, ...]:
    """For the INSERT that computes the version itself (see ``datastore._APPEND_RESOURCE``)."""
    params = resource_params(d, v)
    version_at = RESOURCE_COLUMNS.index("version")
    return params[:version_at] + params[version_at + 1 :]


def resource_from_row(d: Dialect, r: Row) -> ResourceRecord:
    return ResourceRecord(
        stack=r["stack"],
        type=r["type"],
        label=r["label"],
        target=r["target"],
        native_id=r["native_id"],
        properties=decode_json(r["properties"]),
        desired_properties=decode_json(r["desired_properties"]),
        version=int(r["version"]),
        deleted=bool(r["deleted"]),
        command_id=r["command_id"],
        created_at=d.decode_time(r["created_at"]),
        managed=bool(r["managed"]),
        origin=VersionOrigin(r["origin"]),
    )


def stack_params(d: Dialect, s: StackRecord) -> tuple[Any, ...]:
    return (
        s.label, s.description, encode_json(s.policies), d.encode_time(s.expires_at),
        d.encode_time(s.reconciled_at),
    )  # fmt: skip


def stack_from_row(d: Dialect, r: Row) -> StackRecord:
    return StackRecord(
        label=r["label"],
        description=r["description"],
        policies=decode_json(r["policies"]) or [],
        expires_at=d.decode_optional_time(r["expires_at"]),
        reconciled_at=d.decode_optional_time(r["reconciled_at"]),
    )


def target_params(t: TargetRecord) -> tuple[Any, ...]:
    return (t.label, t.namespace, encode_json(t.config))


def target_from_row(r: Row) -> TargetRecord:
    return TargetRecord(label=r["label"], namespace=r["namespace"], config=decode_json(r["config"]))


def join_token_from_row(d: Dialect, r: Row) -> JoinTokenRecord:
    return JoinTokenRecord(
        id=r["id"],
        secret_sha256=r["secret_sha256"],
        namespaces=tuple(decode_json(r["namespaces"]) or ()),
        created_at=d.decode_time(r["created_at"]),
        expires_at=d.decode_time(r["expires_at"]),
        used_at=d.decode_optional_time(r["used_at"]),
        used_by=r["used_by"],
    )


def _progress(u: ResourceUpdateRecord) -> str | None:
    return encode_json(u.progress.to_json() if u.progress else None)
