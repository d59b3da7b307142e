"""The agent's datastore: SQLite by default, PostgreSQL by URL, one schema, migrations at open.

    store = await open_store("sqlite:///home/me/.pel/formae/data/formae.db")
    try:
        await store.create_command(Command.new(CommandKind.APPLY, Mode.RECONCILE, forma), updates)
        ...
    finally:
        await store.close()

Every write is committed before its ``await`` returns; concurrent writers share transactions
(group commit). Every failure of the database surfaces as ``StoreError``.
"""

from formae.store._open import open_store
from formae.store.api_tokens import ApiTokenRecord
from formae.store.cluster import AgentRecord, ClaimPart, ClaimPartKind, StoredClaim, SyncRunRecord
from formae.store.datastore import Datastore, Drift, Observation, WriteStats
from formae.store.errors import JoinRefused, StoreError, StoreUnavailable, mask_url
from formae.store.group_commit import GroupCommitter
from formae.store.ids import new_id
from formae.store.postgres import PostgresStore
from formae.store.records import (
    INCOMPLETE_COMMAND_STATES,
    UNMANAGED_STACK,
    Command,
    CommandKind,
    CommandState,
    Fence,
    JoinTokenRecord,
    NewResourceVersion,
    PluginProgress,
    ResourceChange,
    ResourceDeletion,
    ResourceRecord,
    ResourceUpdateRecord,
    StackRecord,
    TargetRecord,
    UpdateState,
    VersionOrigin,
    utc_now,
)
from formae.store.sqlite import SqliteStore, sqlite_url

__all__ = [
    "INCOMPLETE_COMMAND_STATES",
    "UNMANAGED_STACK",
    "AgentRecord",
    "ApiTokenRecord",
    "ClaimPart",
    "ClaimPartKind",
    "Command",
    "CommandKind",
    "CommandState",
    "Datastore",
    "Drift",
    "Fence",
    "GroupCommitter",
    "JoinRefused",
    "JoinTokenRecord",
    "NewResourceVersion",
    "Observation",
    "PluginProgress",
    "PostgresStore",
    "ResourceChange",
    "ResourceDeletion",
    "ResourceRecord",
    "ResourceUpdateRecord",
    "SqliteStore",
    "StackRecord",
    "StoreError",
    "StoreUnavailable",
    "StoredClaim",
    "SyncRunRecord",
    "TargetRecord",
    "UpdateState",
    "VersionOrigin",
    "WriteStats",
    "mask_url",
    "new_id",
    "open_store",
    "sqlite_url",
    "utc_now",
]
